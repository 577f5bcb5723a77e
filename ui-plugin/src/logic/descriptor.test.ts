// Unit tests of the shipped ui-plugins descriptor (static/olvm-backup.json).
import { readFileSync } from 'fs';
import * as path from 'path';
import { PAGES, PLUGIN_NAME } from '../constants';
import { descriptorProblems } from './descriptor';

// compiled to dist/ui-plugin/src/logic/: the sources are four levels up
const pluginRoot = path.resolve(__dirname, '../../../../ui-plugin');

describe('ui-plugins descriptor', () => {
  const d = JSON.parse(readFileSync(path.join(pluginRoot, 'static', 'olvm-backup.json'), 'utf8')) as Record<string, unknown>;

  it('is what the engine accepts, names the plugin and its host page', () => {
    expect(descriptorProblems(d)).toEqual([]);
    expect(d.name).toBe(PLUGIN_NAME);
    expect(d.url).toBe(`plugin/${PLUGIN_NAME}/plugin.html`);
    expect(PAGES.place.startsWith(`plugin/${PLUGIN_NAME}/`)).toBe(true);
    // lazyLoad stays at its default (true): WebAdmin does not wait for us, and our primary
    // place cannot become the first landing page (reference §2.3 quirk)
    expect(d.lazyLoad).toBeUndefined();
  });

  it('holds no secrets (WebAdmin shows config to every user)', () => {
    const config = JSON.stringify(d.config).toLowerCase();
    for (const word of ['password', 'secret', 'token', 'key']) expect(config).not.toContain(word);
  });

  it('catches what would make WebAdmin skip the plugin', () => {
    expect(descriptorProblems({ name: 'x', url: 'plugin/x/p.html', lazyLoad: 'false' })).toEqual(['lazyLoad must be a boolean']);
    expect(descriptorProblems({ url: '' })).toEqual(['name is required', 'url must be a non-empty string']);
    expect(descriptorProblems([])).toEqual(['the descriptor is not a JSON object']);
    expect(descriptorProblems({ name: 'x', url: 'plugin/x/p.html', config: [] })).toEqual(['config must be an object']);
  });
});
