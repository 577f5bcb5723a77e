// The plugin's house rules that no linter checks: every module under 400 lines, opening with a
// comment on what it owns; busy and disabled-with-a-reason buttons drawn by ActionButton alone.
// (Its layers are eslint.config.js's.)
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';

// compiled to dist/ui-plugin/src/: the sources are three levels up
const SRC = path.resolve(__dirname, '../../../ui-plugin/src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.tsx?$/.test(e.name) ? [p] : [];
  });
}

describe('the plugin house', () => {
  const files = sources(SRC).map((f) => ({ name: path.relative(SRC, f), text: readFileSync(f, 'utf8') }));

  it('finds the sources', () => {
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['intl/messages.ts', path.join('hooks', 'usePlace.ts')]));
  });

  it('has no file over 400 lines', () => {
    expect(files.filter((f) => f.text.split('\n').length > 400).map((f) => f.name)).toEqual([]);
  });

  it('draws a busy or disabled-with-a-reason button only through ActionButton (README: every button that calls the service through one ActionButton)', () => {
    const own = path.join('components', 'common', 'ActionButton.tsx');
    expect(files.filter((f) => f.name !== own && !f.name.endsWith('.test.ts') && /\b(isLoading|isAriaDisabled)\b|data-disabled-reason/.test(f.text)).map((f) => f.name)).toEqual([]);
  });

  it('opens every module with a comment on what it owns', () => {
    expect(files.filter((f) => !/^(\/\/|\/\*)/.test(f.text)).map((f) => f.name)).toEqual([]);
  });
});
