/**
 * Locale-aware formatting of what the service reports (bytes, durations, times, ratios).
 * Pure: no DOM, no React; unit-tested under Node.
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

function numberFormat(locale: string, digits: number): Intl.NumberFormat {
  try {
    return new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  } catch {
    return new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
}

/** 1536 → "1.5 KiB" (binary units, as disk sizes are given). */
export function formatBytes(bytes: number | null | undefined, locale = 'en-US'): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${bytes < 0 ? '-' : ''}${numberFormat(locale, digits).format(v)} ${UNITS[u] ?? 'B'}`;
}

/** Seconds → "1 h 02 min", "3 min 05 s", "12 s", "0.4 s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 1) return `${(Math.round(seconds * 10) / 10).toString()} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n: number): string => n.toString().padStart(2, '0');
  if (h > 0) return `${h} h ${pad(m)} min`;
  if (m > 0) return `${m} min ${pad(sec)} s`;
  return `${sec} s`;
}

/** ISO time → the user's local date and time in their WebAdmin locale. */
export function formatDateTime(iso: string | null | undefined, locale = 'en-US', timeZone?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const opts: Intl.DateTimeFormatOptions = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' };
  if (timeZone) opts.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(locale, opts).format(d);
  } catch {
    return new Intl.DateTimeFormat('en-US', opts).format(d);
  }
}

/** 2.345 → "2.35×"; ratios under 1 (incompressible data) are shown as they are. */
export function formatRatio(ratio: number | null | undefined, locale = 'en-US'): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio) || ratio <= 0) return '—';
  return `${numberFormat(locale, 2).format(ratio)}×`;
}

/** 0.4567 → "46%". */
export function formatPercent(fraction: number, locale = 'en-US'): string {
  if (!Number.isFinite(fraction)) return '—';
  try {
    return new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 }).format(fraction);
  } catch {
    return `${Math.round(fraction * 100)}%`;
  }
}
