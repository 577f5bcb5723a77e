import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { EngineSim } from '../engine-sim';
import { WebAdminHarness } from '../ui-harness/server';
import { launchChromium } from './browser';

// The harness itself against the contract it claims (shared/reference/ovirt-ui-plugin.md §1.6,
// §2.3, §2.4): two throwaway plugins probe gating, register/ready, the failure of a plugin whose
// handler throws, queued UserLogin, the default-place quirk and button callbacks.

function plugin(dist: string, name: string, script: string): void {
  writeFileSync(path.join(dist, `${name}.json`), JSON.stringify({ name, url: `plugin/${name}/plugin.html`, resourcePath: name, config: { a: 1 } }));
  mkdirSync(path.join(dist, name), { recursive: true });
  writeFileSync(path.join(dist, name, 'plugin.html'), `<!doctype html><script>${script}</script>`);
  writeFileSync(path.join(dist, name, 'page.html'), `<!doctype html><p id="page">${name}</p>`);
}

describe('WebAdmin harness contract', () => {
  let dir: string;
  let sim: EngineSim;
  let harness: WebAdminHarness;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'olvm-harness-'));
    const dist = path.join(dir, 'ui-plugins');
    mkdirSync(dist);
    plugin(
      dist,
      'good',
      `var api = window.top.pluginApi('good');
       var probe = window.top.__probe = {};
       api.addPrimaryMenuPlace('Early', 'early', 'plugin/good/page.html');
       probe.tokenWhileLoading = typeof api.ssoToken();
       probe.config = api.configObject();
       api.register({
         UiInit: function () {
           api.addPrimaryMenuPlace('Good', 'good-place', 'plugin/good/page.html');
           api.addMenuPlaceActionButton('VirtualMachine', 'Loose', { id: 'Loose', isEnabled: function () { return 'yes'; }, onClick: function () { throw new Error('boom'); } });
           api.addMenuPlaceActionButton('VirtualMachine', 'Off', { id: 'Off', isEnabled: function () { return false; } });
           api.addMenuPlaceActionButton('VirtualMachine', 'Hidden', { id: 'Hidden', isAccessible: function () { return false; } });
         },
         UserLogin: function (name) { probe.login = name; probe.loginState = window.top.__harness.state('good'); },
       });
       api.register({ UiInit: function () { throw new Error('a second register() must not count'); } });
       api.ready();`,
    );
    plugin(dist, 'bad', `var api = window.top.pluginApi('bad'); api.register({ UiInit: function () { throw new Error('broken'); } }); api.ready();`);
    sim = await EngineSim.start({ dataDir: path.join(dir, 'engine'), seed: false });
    harness = await WebAdminHarness.start({ pluginDist: dist, engineBaseUrl: sim.baseUrl, configOverride: { b: 2 } });
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await harness?.close();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const h = <T>(expr: string): Promise<T> => page.evaluate<T>(`JSON.parse(JSON.stringify(${expr}))`);

  it('refuses a wrong password', async () => {
    await page.goto(harness.url);
    await page.fill('#login-password', 'wrong');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:not(:empty)');
  });

  it('runs the plugin lifecycle as WebAdmin does', async () => {
    await page.fill('#login-password', sim.users.admin.password);
    await page.click('#login-submit');
    await page.waitForSelector('#nav-good-place');
    await page.waitForFunction("window.__harness.state('bad') === 'FAILED'");
    expect(await h('window.__harness.state("good")')).toBe('IN_USE');
    // a UI call before ready() is dropped; safe accessors and configObject work while LOADING
    expect(await h('window.__harness.dropped')).toEqual([{ plugin: 'good', fn: 'addPrimaryMenuPlace', state: 'LOADING' }]);
    expect(await page.locator('#nav-early').count()).toBe(0);
    expect(await h('window.__probe')).toMatchObject({ tokenWhileLoading: 'string', config: { a: 1, b: 2 }, login: 'admin@internal', loginState: 'IN_USE' });
    // an exception escaping UiInit: the plugin's iframe is gone for good; the second register() never counted
    expect(await h('window.__harness.failures')).toEqual([{ plugin: 'bad', event: 'UiInit', message: 'broken' }]);
    expect(await page.locator('#plugin-frame-bad').count()).toBe(0);
  });

  it("makes the last primary place WebAdmin's default landing place", async () => {
    expect(await h('window.__harness.currentPlace()')).toBe('dashboard-main');
    expect(await h('window.__harness.defaultPlace()')).toBe('good-place');
    await page.click('#harness-home');
    await page.waitForFunction("window.__harness.currentPlace() === 'good-place'");
    expect(await page.frameLocator('#place-frame-good-place').locator('#page').textContent()).toBe('good');
  });

  it('evaluates buttons with real booleans only and swallows their exceptions', async () => {
    await page.click('#nav-vms');
    await page.waitForSelector('#ActionPanel_Loose');
    expect(await page.isEnabled('#ActionPanel_Loose')).toBe(true); // 'yes' is no boolean: default true
    expect(await page.isEnabled('#ActionPanel_Off')).toBe(false);
    expect(await page.locator('#ActionPanel_Hidden').count()).toBe(0);
    await page.click('#ActionPanel_Loose');
    expect(await h('window.__harness.buttonErrors')).toEqual([{ plugin: 'good', callback: 'onClick', message: 'boom' }]);
    expect(await h('window.__harness.state("good")')).toBe('IN_USE');
  });
});
