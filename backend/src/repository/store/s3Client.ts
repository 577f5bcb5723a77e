import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AppError } from '../../errors';
import type { S3Config } from './s3Config';

/**
 * The AWS SDK v3 client for one S3Config: endpoint, region, path-style addressing, a private CA,
 * credentials from an AWS-format credentials file or the SDK's standard chain, socket timeouts,
 * and the settings Ceph RGW 16 needs (ceph-lab.md): checksums only WHEN_REQUIRED, because the
 * SDK's default (since 3.729) sends stream bodies aws-chunked with trailing checksums, which RGW
 * 16 rejects with 411 MissingContentLength. The product sends Content-MD5 itself on every put.
 */

export interface S3ClientTuning {
  /** TCP connect deadline. */
  connectTimeoutMs: number;
  /** Deadline for one request and its response. */
  requestTimeoutMs: number;
  /** Sockets kept per client (parallel uploads/downloads). */
  maxSockets: number;
  /** Added to the signing clock (tests provoke RequestTimeTooSkewed with it). */
  systemClockOffsetMs?: number;
}

export const DEFAULT_TUNING: S3ClientTuning = { connectTimeoutMs: 10_000, requestTimeoutMs: 300_000, maxSockets: 16 };

export function makeS3Client(cfg: S3Config, tuning: S3ClientTuning): S3Client {
  // The SDK warns on every process start under Node < 22 about releases it has not published
  // yet; the product pins 3.1178.0, which supports Node 20, so the warning only alarms operators.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let ca: Buffer | undefined;
  if (cfg.caFile) {
    try {
      ca = readFileSync(cfg.caFile);
    } catch (err) {
      throw new AppError('CONFIG_INVALID', `the S3 CA file ${cfg.caFile} cannot be read`, { cause: err });
    }
  }
  const agentOpts = { keepAlive: true, maxSockets: tuning.maxSockets };
  const handler = new NodeHttpHandler({
    connectionTimeout: tuning.connectTimeoutMs,
    requestTimeout: tuning.requestTimeoutMs,
    throwOnRequestTimeout: true,
    httpAgent: new http.Agent(agentOpts),
    httpsAgent: new https.Agent({ ...agentOpts, ...(ca ? { ca } : {}) }),
  });
  const config: S3ClientConfig = {
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    requestHandler: handler,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // retries are ours (s3Retry.ts): one policy, and the final error keeps the store's words
    maxAttempts: 1,
  };
  if (cfg.endpoint) config.endpoint = cfg.endpoint;
  if (tuning.systemClockOffsetMs !== undefined) config.systemClockOffset = tuning.systemClockOffsetMs;
  if (cfg.credentialsFile) config.credentials = readCredentialsFile(cfg.credentialsFile, cfg.profile ?? 'default');
  else if (cfg.profile) config.profile = cfg.profile;
  return new S3Client(config);
}

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Reads `profile` from an AWS-format credentials file (INI: `[name]` or `[profile name]`
 * sections, `aws_access_key_id`, `aws_secret_access_key`, optional `aws_session_token`;
 * `#`/`;` comments). Parsed here rather than through the SDK's INI provider, which is not one of
 * the product's declared dependencies.
 */
export function readCredentialsFile(file: string, profile: string): StaticCredentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AppError('CONFIG_INVALID', `the S3 credentials file ${file} cannot be read`, { cause: err });
  }
  const sections = parseIni(text);
  const values = sections.get(profile) ?? sections.get(`profile ${profile}`);
  if (!values) throw new AppError('CONFIG_INVALID', `the S3 credentials file ${file} has no [${profile}] section`);
  const accessKeyId = values.get('aws_access_key_id');
  const secretAccessKey = values.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey) {
    throw new AppError('CONFIG_INVALID', `[${profile}] in ${file} lacks aws_access_key_id or aws_secret_access_key`);
  }
  const sessionToken = values.get('aws_session_token');
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      const name = (section[1] ?? '').replace(/\s+/g, ' ');
      current = out.get(name) ?? new Map<string, string>();
      out.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return out;
}
