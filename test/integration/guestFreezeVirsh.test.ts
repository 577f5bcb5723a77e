import { AppError } from '../../backend/src/errors';
import { VirshGuestAgent, type RemoteCommandResult, type RemoteCommandRunner } from '../../backend/src/qmp';

/** A libvirt host as `virsh qemu-agent-command` answers it (scripted; no libvirt here). */
function runner(answer: (argv: string[]) => RemoteCommandResult | Promise<RemoteCommandResult>): RemoteCommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    hostLabel: 'kvm1',
    calls,
    run: async (argv) => {
      calls.push(argv);
      return answer(argv);
    },
    stream: () => Promise.reject(new Error('not used')),
    onLost: () => () => undefined,
  };
}

const ok = (stdout: string): RemoteCommandResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): RemoteCommandResult => ({ code: 1, stdout: '', stderr });

describe('guest agent through virsh qemu-agent-command (libvirt hosts)', () => {
  test('commands as argv (never a shell string), virsh timeout in seconds, domain by id then by name', async () => {
    const r = runner((argv) => {
      if (argv[5] === 'vm-id') return fail("error: failed to get domain 'vm-id'");
      const cmd = (JSON.parse(argv[6] ?? '{}') as { execute: string }).execute;
      if (cmd === 'guest-fsfreeze-freeze') return ok('{"return":2}');
      if (cmd === 'guest-fsfreeze-status') return ok('{"return":"frozen"}');
      return ok('{"return":{}}');
    });
    const ga = new VirshGuestAgent(r, { uri: 'qemu:///system', domains: ['vm-id', 'web01'], vmLabel: 'web01' });
    await ga.ping({ timeoutMs: 2000 });
    expect(await ga.fsfreezeFreeze({ timeoutMs: 30_000 })).toBe(2);
    expect(await ga.fsfreezeStatus()).toBe('frozen');
    expect(r.calls[0]).toEqual(['virsh', '-q', '-c', 'qemu:///system', 'qemu-agent-command', 'vm-id', '{"execute":"guest-ping"}', '--timeout', '2']);
    expect(r.calls[1]?.[5]).toBe('web01');
    // the domain found is kept
    expect(r.calls.slice(2).map((c) => c[5])).toEqual(['web01', 'web01']);
    expect(r.calls[2]?.slice(-2)).toEqual(['--timeout', '30']);
  });

  // texts as libvirt prints them (the first three checked with libvirt 9.0 in the hosts lab;
  // the timeout text is libvirt's VIR_ERR_AGENT_UNRESPONSIVE message for an agent reply overdue)
  test('libvirt errors map to the qga codes', async () => {
    const cases: Array<[string, string]> = [
      ['error: Guest agent is not responding: QEMU guest agent is not connected', 'QGA_UNAVAILABLE'],
      ['error: argument unsupported: QEMU guest agent is not configured', 'QGA_UNAVAILABLE'],
      ['error: Requested operation is not valid: domain is not running', 'QGA_UNAVAILABLE'],
      ['error: Guest agent is not responding: Guest agent not available for now', 'QGA_TIMEOUT'],
      ["error: internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': failed to freeze /: Device or resource busy", 'QGA_COMMAND_FAILED'],
    ];
    for (const [stderr, code] of cases) {
      const ga = new VirshGuestAgent(runner(() => fail(stderr)), { domains: ['d'], vmLabel: 'web01' });
      const err = await ga.fsfreezeFreeze().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toContain('guest agent of vm web01 on host kvm1');
    }
    const hung = new VirshGuestAgent(
      runner(() => Promise.reject(new AppError('TIMEOUT', 'virsh on host kvm1 did not finish'))),
      { domains: ['d'], vmLabel: 'web01' },
    );
    await expect(hung.fsfreezeThaw({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'QGA_TIMEOUT' });
  });

  test('a restricted account: virsh through sudo -n, only names the sudoers rule admits, a refusal is HOST_SUDO_REFUSED', async () => {
    const r = runner(() => ok('{"return":{}}'));
    const ga = new VirshGuestAgent(r, { domains: ["web 01's", 'web01'], vmLabel: 'web01', sudo: true });
    await ga.ping({ timeoutMs: 3000 });
    // the name with a space and a quote is never asked for: sudo's rule could not admit it
    expect(r.calls).toEqual([['sudo', '-n', '/usr/bin/virsh', '-q', '-c', 'qemu:///system', 'qemu-agent-command', 'web01', '{"execute":"guest-ping"}', '--timeout', '3']]);
    const refused = new VirshGuestAgent(
      runner(() => ({ code: 1, stdout: '', stderr: 'sudo: a password is required\n' })),
      { domains: ['web01'], vmLabel: 'web01', sudo: true },
    );
    await expect(refused.fsfreezeFreeze()).rejects.toMatchObject({ code: 'HOST_SUDO_REFUSED', details: { host: 'kvm1', reason: 'SUDO_REFUSED' } });
    await expect(refused.fsfreezeFreeze()).rejects.toThrow(/sudo on host kvm1 refused virsh qemu-agent-command \(guest-fsfreeze-freeze\).*a password is required/);
  });
});
