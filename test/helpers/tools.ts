import { execFileSync } from 'child_process';

/** Tests use real QEMU; a missing tool must fail the test loudly, never skip it. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`required tools missing: ${missing.join(', ')} (apt-get install qemu-system-x86 qemu-utils libnbd-bin)`);
  }
}
