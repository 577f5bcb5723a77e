// Unit tests of the number, size, duration and date formats.
import { formatBytes, formatDateTime, formatDuration, formatPercent, formatRatio } from './format';

describe('format', () => {
  it('gives bytes in binary units with sensible precision', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1,023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(64 * 1024 * 1024)).toBe('64 MiB');
    expect(formatBytes(10.25 * 1024 ** 3)).toBe('10.3 GiB');
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });

  it('follows the WebAdmin locale for digits', () => {
    expect(formatBytes(1536, 'de-DE')).toBe('1,5 KiB');
    expect(formatBytes(1536, 'not a locale')).toBe('1.5 KiB');
  });

  it('gives durations in h/min/s', () => {
    expect(formatDuration(0.44)).toBe('0.4 s');
    expect(formatDuration(12)).toBe('12 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(-1)).toBe('—');
  });

  it('gives times in the locale and time zone', () => {
    expect(formatDateTime('2024-03-05T14:07:09Z', 'en-US', 'UTC')).toBe('Mar 5, 2024, 02:07:09 PM');
    expect(formatDateTime('2024-03-05T14:07:09Z', 'de-DE', 'UTC')).toBe('5. März 2024, 14:07:09');
    expect(formatDateTime(null)).toBe('—');
    expect(formatDateTime('garbage')).toBe('—');
  });

  it('gives ratios and percents', () => {
    expect(formatRatio(2.345)).toBe('2.35×');
    expect(formatRatio(1)).toBe('1×');
    expect(formatRatio(0)).toBe('—');
    expect(formatPercent(0.456)).toBe('46%');
  });
});
