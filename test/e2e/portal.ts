import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Frame, Page } from 'playwright-core';
import type { Job } from '../../backend/src/api/contract';
import { requireTools } from '../helpers/tools';
import { startStack, type Stack, type StackServiceOptions } from '../ui-harness/stack';
import { launchChromium } from './browser';

/** Screenshots and service logs of the browser tests. */
export const OUT = process.env.E2E_OUTPUT_DIR ?? path.resolve(__dirname, '../../test-output/e2e');
/** The plugin's place and VM tab tokens in the WebAdmin harness. */
export const PLACE = 'olvm-backup';
export const TAB = 'olvm-backup-vm';

type User = { name: string; password: string };

/** Polls `fn` until it gives a truthy value; the error names `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One browser test's world: the stack (engine simulator with real QEMU VMs, the backup service,
 * the WebAdmin harness serving the built plugin) and Debian's Chromium on it, with what every
 * browser test asks of them: tokens, the service's API, the harness' state, frames, screenshots.
 */
export class Portal {
  private constructor(
    readonly stack: Stack,
    readonly page: Page,
    readonly dir: string,
    /** The admin's SSO token (the API calls' default). */
    readonly adminToken: string,
    private readonly browser: Awaited<ReturnType<typeof launchChromium>>,
  ) {}

  /** `service`: flags of `olvm-backup serve` the test needs (backup admins, minimum lock). */
  static async open(name: string, service: StackServiceOptions = {}): Promise<Portal> {
    requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
    mkdirSync(OUT, { recursive: true });
    process.stdout.write(`e2e output (screenshots, service log): ${OUT}\n`);
    const browser = await launchChromium();
    let dir: string | undefined;
    try {
      const page = browser.context.pages()[0] ?? (await browser.context.newPage());
      dir = mkdtempSync(path.join(os.tmpdir(), `olvm-e2e-${name}-`));
      const stack = await startStack({ dir, tls: false, service });
      const token = await ssoTokenOf(stack, stack.sim.users.admin);
      return new Portal(stack, page, dir, token, browser);
    } catch (err) {
      await browser.close().catch(() => undefined);
      if (dir) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Closes the browser and the stack; the service's log is kept beside the screenshots. */
  async close(logName: string): Promise<void> {
    await this.browser.close().catch(() => undefined);
    try {
      await this.stack.close();
      copyFileSync(path.join(this.dir, 'service.log'), path.join(OUT, logName));
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  ssoToken(user: User): Promise<string> {
    return ssoTokenOf(this.stack, user);
  }

  /** The backup service's API (as the admin unless `token` is given); an empty body is null. */
  async api<T>(method: string, p: string, body?: unknown, token = this.adminToken): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.stack.service.url}/api/v1${p}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** The engine's REST API (the simulator's) as the admin; an empty body is null. */
  async engine<T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.stack.sim.baseUrl}/api${p}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminToken}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** The job once it has ended (neither queued nor running), read through the service's API. */
  jobDone(jobId: string, timeoutMs = 240_000): Promise<Job> {
    return until(
      `job ${jobId} to end`,
      async () => {
        const j = (await this.api<Job>('GET', `/jobs/${jobId}`)).body;
        return j.state === 'queued' || j.state === 'running' ? undefined : j;
      },
      timeoutMs,
    );
  }

  /** What the harness recorded (toasts, failures, places), as plain JSON. */
  harness<T>(expr: string): Promise<T> {
    return this.page.evaluate<T>(`JSON.parse(JSON.stringify(window.__harness.${expr}))`);
  }

  async login(user: User): Promise<void> {
    await this.page.goto(this.stack.harness.url);
    await this.page.fill('#login-username', user.name);
    await this.page.fill('#login-password', user.password);
    await this.page.click('#login-submit');
    await this.page.waitForSelector(`#nav-${PLACE}`, { timeout: 30_000 });
  }

  async logout(): Promise<void> {
    await this.page.click('#harness-logout');
    await this.page.waitForSelector('#login-submit');
  }

  /** The VM's Backups tab: the VM selected in the VMs view, the plugin's tab opened, its frame. */
  async vmTab(vmId: string): Promise<Frame> {
    await this.page.click('#nav-vms');
    await this.page.check(`#vm-select-${vmId}`);
    await this.page.click(`#detail-tab-${TAB}`);
    return this.frameOf(`vm-tab.html?vmId=${vmId}`);
  }

  frameOf(urlPart: string): Promise<Frame> {
    return until(`a frame loading ${urlPart}`, () => Promise.resolve(this.page.frames().find((f) => f.url().includes(urlPart))), 30_000);
  }

  async screenshot(name: string): Promise<void> {
    const file = path.join(OUT, `${name}.png`);
    await this.page.waitForTimeout(400); // PatternFly's tab, modal and progress transitions
    await this.page.screenshot({ path: file, fullPage: true });
    process.stdout.write(`e2e screenshot: ${file}\n`);
  }

  /** No exception escaped into WebAdmin, no button callback failed, the plugin is in use. */
  async noPluginFailures(): Promise<void> {
    expect(await this.harness<unknown[]>('failures')).toEqual([]);
    expect(await this.harness<unknown[]>('buttonErrors')).toEqual([]);
    expect(await this.page.evaluate(`window.__harness.state('${PLACE}')`)).toBe('IN_USE');
  }
}

async function ssoTokenOf(stack: Stack, user: User): Promise<string> {
  const res = await fetch(`${stack.sim.baseUrl}/sso/oauth/token`, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', scope: 'ovirt-app-api', username: user.name, password: user.password }).toString(),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}
