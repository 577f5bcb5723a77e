import type { Request, Response } from 'express';
import { XMLParser } from 'fast-xml-parser';
import { badRequest } from './faults';

/**
 * The engine's wire representation (reference §2): JSON with booleans and integers as strings,
 * dates as epoch-ms numbers, unset attributes and empty lists omitted, collections keyed by the
 * singular type name; XML (the engine's default when the client does not ask for JSON) with
 * `id`/`href` (and a link's `rel`) as attributes. Request bodies may come as JSON or XML.
 */

export type Wire = { [key: string]: WireValue };
export type WireValue = string | number | Wire | WireValue[] | undefined;

export const API = '/ovirt-engine/api';

export const s = (v: boolean | number): string => String(v);
export const ref = (kind: string, id: string): Wire => ({ href: `${API}/${kind}/${id}`, id });
export const links = (base: string, rels: string[]): WireValue[] => rels.map((rel) => ({ href: `${base}/${rel}`, rel }));

/** `{"vm": [...]}`, or `{}` when there is nothing (Jackson NON_NULL on an unset list). */
export function collection(singular: string, items: Wire[]): Wire {
  return items.length === 0 ? {} : { [singular]: items };
}

/** Drops undefined members, so "unset" really is absent on the wire. */
export function clean(w: Wire): Wire {
  const out: Wire = {};
  for (const [k, v] of Object.entries(w)) if (v !== undefined) out[k] = v;
  return out;
}

export function wantsJson(req: Request): boolean {
  return (req.get('accept') ?? '').toLowerCase().includes('json');
}

/** Sends `body` as the root element `root` (singular type, or plural for collections). */
export function send(req: Request, res: Response, status: number, root: string, body: Wire): void {
  res.status(status);
  if (wantsJson(req)) {
    res.type('application/json').send(JSON.stringify(body));
  } else {
    res.type('application/xml').send(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n${toXml(root, body)}`);
  }
}

const XML_ATTRS = new Set(['id', 'href']);

export function toXml(name: string, value: WireValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => toXml(name, v)).join('');
  if (typeof value !== 'object') return `<${name}>${esc(String(value))}</${name}>`;
  let attrs = '';
  let children = '';
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if ((XML_ATTRS.has(k) || (name === 'link' && k === 'rel')) && typeof v !== 'object') attrs += ` ${k}="${esc(String(v))}"`;
    else children += toXml(k, v);
  }
  return children ? `<${name}${attrs}>${children}</${name}>` : `<${name}${attrs}/>`;
}

function esc(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// ---- reading requests -------------------------------------------------------------------------

const xmlParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false, parseAttributeValue: false, textNodeName: '#text' });

/** The request body as a plain object: JSON as sent, XML as the root element's content. */
export function body(req: Request): Record<string, unknown> {
  const raw = req.body as unknown;
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw === 'string') {
    let doc: unknown;
    try {
      doc = xmlParser.parse(raw);
    } catch (err) {
      throw badRequest(`Invalid XML body: ${(err as Error).message}`);
    }
    const roots = Object.entries(doc as Record<string, unknown>).filter(([k]) => k !== '?xml');
    const content = roots[0]?.[1];
    return typeof content === 'object' && content !== null ? (content as Record<string, unknown>) : {};
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('Request body must be an object');
  return raw as Record<string, unknown>;
}

export function obj(o: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = o[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export function str(o: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = o?.[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object' && v !== null && '#text' in v) return String((v as Record<string, unknown>)['#text']);
  return undefined;
}

/** The engine's boolean parsing: true/t/yes/y/1 and false/f/no/n/0, case-insensitive. */
export function parseBool(v: string | undefined, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  if (['true', 't', 'yes', 'y', '1'].includes(t)) return true;
  if (['false', 'f', 'no', 'n', '0'].includes(t)) return false;
  throw badRequest(`Invalid value '${v}' for boolean parameter '${what}'`);
}

export function bool(o: Record<string, unknown> | undefined, key: string): boolean | undefined {
  return parseBool(str(o, key), key);
}

export function int(o: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = str(o, key);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw badRequest(`Value "${v}" of "${key}" is not a valid integer`);
  return Number(v);
}

/** The id of a link reference (`{"disk": {"id": ...}}`; only the id is honoured). */
export function refId(o: Record<string, unknown> | undefined, key: string): string | undefined {
  return str(obj(o ?? {}, key), 'id');
}

/** A nested collection in either shape: `{"disks": {"disk": [..]}}` or a single XML child. */
export function list(o: Record<string, unknown> | undefined, plural: string, singular: string): Record<string, unknown>[] {
  const wrapper = obj(o ?? {}, plural);
  const inner = wrapper?.[singular];
  const arr = Array.isArray(inner) ? inner : inner === undefined ? [] : [inner];
  return arr.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
}

/**
 * A named parameter as the engine resolves it (reference §1.4): query string, then matrix
 * parameter of the last path segment, then (only for filter and all_content) a header.
 */
export function param(req: Request, name: string): string | undefined {
  const q = req.query[name];
  if (typeof q === 'string') return q;
  const last = req.originalUrl.split('?')[0]?.split('/').pop() ?? '';
  for (const part of last.split(';').slice(1)) {
    const [k, v] = part.split('=');
    if (k === name) return v ?? '';
  }
  if (name === 'filter') return req.get('filter');
  if (name === 'all_content') return req.get('all-content');
  return undefined;
}

/** A boolean parameter; present without a value means true (the usual "empty" default). */
export function boolParam(req: Request, name: string): boolean | undefined {
  const v = param(req, name);
  if (v === '') return true;
  return parseBool(v, name);
}
