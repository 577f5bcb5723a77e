import { AppError } from '../../errors';

/**
 * Readers for the engine's JSON at the edge (reference/ovirt-api.md §2): booleans and integers
 * arrive as strings ("true", "4294967296"), dates as epoch milliseconds, unset attributes are
 * omitted, and collections are objects keyed by the singular type name ({"vm": [...]}), with the
 * key missing when the collection is empty. Every reader names the entity and field it failed on.
 */
export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function protocolError(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('ENGINE_PROTOCOL_ERROR', message, { details });
}

/** The items of a wrapped collection: `{"vm": [...]}`, `{}` (empty), or a lone object. */
export function listOf(body: unknown, item: string, what: string): Json[] {
  if (body === undefined || body === null || body === '') return [];
  if (!isObject(body)) throw protocolError(`engine sent ${what} that is not an object`);
  const items = body[item];
  if (items === undefined || items === null) return [];
  const arr = Array.isArray(items) ? items : [items];
  return arr.map((it, i) => {
    if (!isObject(it)) throw protocolError(`engine sent ${what} whose item ${i} is not an object`);
    return it;
  });
}

/** Top-level object of a single-entity reply. */
export function entityOf(body: unknown, what: string): Json {
  if (!isObject(body)) throw protocolError(`engine sent ${what} that is not an object`);
  return body;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Typed access to one engine object; `label` (e.g. "vm 5e2f") goes into every error message. */
export class Fields {
  readonly label: string;

  constructor(readonly kind: string, readonly obj: Json) {
    const id = typeof obj.id === 'string' ? obj.id : undefined;
    this.label = id ? `${kind} ${id}` : kind;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  str(key: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw this.bad(key, v, 'a string');
  }

  reqStr(key: string): string {
    const v = this.str(key);
    if (v === undefined) throw protocolError(`engine sent ${this.label} without ${key}`, { entity: this.kind, field: key });
    return v;
  }

  /** `true/t/yes/y/1` and `false/f/no/n/0`, case-insensitive, as the engine itself parses them. */
  bool(key: string): boolean | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number' && (v === 0 || v === 1)) return v === 1;
    if (typeof v === 'string') {
      const s = v.trim().toLowerCase();
      if (['true', 't', 'yes', 'y', '1'].includes(s)) return true;
      if (['false', 'f', 'no', 'n', '0'].includes(s)) return false;
    }
    throw this.bad(key, v, 'a boolean');
  }

  /** 32-bit engine integers (xs:int), sent as strings. */
  int(key: string): number | undefined {
    const n = this.int64(key);
    if (n !== undefined && (n > 2 ** 31 - 1 || n < -(2 ** 31))) throw this.bad(key, this.obj[key], 'a 32-bit integer');
    return n;
  }

  /** 64-bit engine integers (sizes, memory): exact as a number up to 2^53, refused beyond. */
  int64(key: string): number | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw this.bad(key, v, 'an integer of at most 2^53');
      return v;
    }
    if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) {
      const big = BigInt(v.trim());
      if (big > MAX_SAFE || big < -MAX_SAFE) throw this.bad(key, v, 'an integer of at most 2^53');
      return Number(big);
    }
    throw this.bad(key, v, 'an integer');
  }

  reqInt64(key: string): number {
    const v = this.int64(key);
    if (v === undefined) throw protocolError(`engine sent ${this.label} without ${key}`, { entity: this.kind, field: key });
    return v;
  }

  /** JSON dates are epoch milliseconds (number or numeric string); ISO text is accepted too. */
  date(key: string): Date | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    let d: Date | undefined;
    if (typeof v === 'number' && Number.isFinite(v)) d = new Date(v);
    else if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) d = new Date(Number(v.trim()));
    else if (typeof v === 'string') d = new Date(v);
    if (d === undefined || Number.isNaN(d.getTime())) throw this.bad(key, v, 'a date');
    return d;
  }

  /** A lower-case enum value checked against the known members; unknown ones map to `fallback`
   *  when the enum has a neutral member (statuses have 'unknown'), else they are refused. */
  enumOf<T extends string>(key: string, members: readonly T[], fallback?: T): T | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    const lower = v.toLowerCase() as T;
    if (members.includes(lower)) return lower;
    if (fallback !== undefined) return fallback;
    throw this.bad(key, v, `one of ${members.join('|')}`);
  }

  object(key: string): Json | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) throw this.bad(key, v, 'an object');
    return v;
  }

  sub(key: string): Fields | undefined {
    const o = this.object(key);
    return o === undefined ? undefined : new Fields(`${this.label} ${key}`, o);
  }

  /** Id of a link such as `"cluster": {"href": ..., "id": ...}`. */
  refId(key: string): string | undefined {
    const o = this.object(key);
    if (o === undefined) return undefined;
    const id = o.id;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }

  /** Nested collection in the XML wrapper shape: `"nics": {"nic": [...]}`; undefined when the
   *  wrapper itself is absent (not followed / not sent), [] when it is present but empty. */
  nestedList(wrapper: string, item: string): Json[] | undefined {
    const v = this.obj[wrapper];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return listOf({ [item]: v }, item, `${this.label} ${wrapper}`);
    return listOf(v, item, `${this.label} ${wrapper}`);
  }

  private bad(key: string, value: unknown, expected: string): AppError {
    const shown = typeof value === 'string' ? `'${value.slice(0, 60)}'` : JSON.stringify(value)?.slice(0, 60);
    return protocolError(`engine sent ${this.label} with ${key} ${shown}, not ${expected}`, { entity: this.kind, field: key });
  }
}

/** True when an inlined link carries more than `id`/`href`, i.e. the engine followed it. */
export function isInlined(o: Json | undefined): o is Json {
  return o !== undefined && Object.keys(o).some((k) => k !== 'id' && k !== 'href');
}
