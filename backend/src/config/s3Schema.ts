/**
 * `repository.s3` of the service's config file: where the repository's durable copy lives on
 * object storage (the local directory is then its cache, `cacheDir`). No credentials here, ever:
 * a key that looks like one is refused with a message saying where credentials go (a file named
 * by `credentialsFile`, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the service's
 * environment); any other unknown key is refused as everywhere else in the file.
 */
import { z } from 'zod';

const says = (text: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : text);
const path = z.string({ error: says('must be a path (a string)') }).min(1, { error: 'must not be empty' });

/** Names that hold a secret (accessKeyId, secretAccessKey, sessionToken, password …). */
const CREDENTIAL_KEY = /access.?key|secret|session.?token|password|^token$|^credentials$/i;

const endpoint = z.string({ error: says('must be an http(s) URL like https://rgw.example:7480') }).superRefine((s, ctx) => {
  const u = URL.canParse(s) ? new URL(s) : undefined;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL like https://rgw.example:7480' });
  else if (u.username !== '' || u.password !== '') ctx.addIssue({ code: 'custom', message: 'must not contain a user or secret (credentials go in repository.s3.credentialsFile or the environment)' });
  else if (u.pathname !== '/' || u.search !== '' || u.hash !== '') ctx.addIssue({ code: 'custom', message: 'must be scheme://host[:port] only (the bucket and prefix have their own keys)' });
});

const shape = {
  endpoint: endpoint.optional(),
  bucket: z
    .string({ error: says('must be a bucket name') })
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'must be a bucket name: 3 to 63 lower-case letters, digits, "." and "-"' }),
  prefix: z
    .string({ error: says('must be a key prefix (a string)') })
    .refine((p) => p.replace(/^\/+|\/+$/g, '') === '' || p.replace(/^\/+|\/+$/g, '').split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..'), {
      error: 'must not have an empty, "." or ".." segment',
    })
    .optional(),
  region: z.string({ error: says('must be a region name') }).regex(/^[a-z0-9-]{1,64}$/i, { error: 'must be a region name like us-east-1' }).optional(),
  forcePathStyle: z.boolean({ error: says('must be true or false') }).optional(),
  caFile: path.optional(),
  credentialsFile: path.optional(),
  profile: z.string({ error: says('must be a profile name') }).min(1).optional(),
  cacheDir: path.optional(),
};

/** A mapping of `keys` that refuses any other key, a credential-like one with a message saying
 *  where credentials go (`where` names the section in messages). */
function s3Section<T extends Partial<typeof shape>>(where: string, keys: T) {
  return z.looseObject(keys, { error: says('must be a mapping of keys') }).superRefine((v, ctx) => {
    for (const key of Object.keys(v)) {
      if (key in keys) continue;
      const secret = CREDENTIAL_KEY.test(key);
      ctx.addIssue({
        code: 'custom',
        path: [key],
        // the loader never echoes the value of a secret (load.ts describeIssue)
        ...(secret ? { params: { secret: true } } : {}),
        message: secret
          ? `credentials must not be in the config file: put them in an AWS credentials file named by ${where}.credentialsFile (mode 0600), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the service's environment`
          : `is not a key of ${where} (${Object.keys(keys).join(', ')})`,
      });
    }
  });
}

export const repositoryS3 = s3Section('repository.s3', shape);

/** `sync.s3`: how the service reaches the object stores of policies' `syncTo: s3://BUCKET/PREFIX`
 *  (the bucket and prefix come from each policy; the cache is per destination under sync.cacheDir). */
export const syncS3 = s3Section('sync.s3', {
  endpoint: shape.endpoint,
  region: shape.region,
  forcePathStyle: shape.forcePathStyle,
  caFile: shape.caFile,
  credentialsFile: shape.credentialsFile,
  profile: shape.profile,
});

/** repository.s3 as the service runs with it: defaults filled, paths absolute. */
export interface S3Settings {
  /** scheme://host[:port]; undefined: AWS S3 of `region` */
  endpoint: string | undefined;
  bucket: string;
  /** without leading or trailing '/' ('' = the bucket's root) */
  prefix: string;
  region: string;
  forcePathStyle: boolean;
  caFile: string | undefined;
  /** undefined: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the default credentials file */
  credentialsFile: string | undefined;
  profile: string | undefined;
  /** the local cache directory (a format-2 repository directory; repository.path points here) */
  cacheDir: string;
}

/** How to reach an object store, without which bucket (sync.s3, or repository.s3's connection). */
export type S3Connection = Omit<S3Settings, 'bucket' | 'prefix' | 'cacheDir'>;
