/**
 * How an S3 store is reached: endpoint, bucket, prefix, addressing, CA, credentials. Owned here
 * (the repository layer) so that the service config and the CLI map their own names onto it.
 * Credentials never come from the service's YAML: from a credentials file named here, or from
 * the SDK's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws/credentials).
 */
export interface S3Config {
  /** `https://rgw.example:7480`; absent = AWS S3 for `region`. */
  endpoint?: string;
  bucket: string;
  /** Key prefix of the repository inside the bucket, without leading or trailing `/` ('' = the bucket's root). */
  prefix: string;
  /** SigV4 region (Ceph accepts any; `us-east-1` is what it expects on CreateBucket). */
  region: string;
  /** Path-style addressing (`endpoint/bucket/key`): Ceph RGW without a DNS name, MinIO. */
  forcePathStyle: boolean;
  /** PEM file of a private CA the endpoint's certificate is signed by. */
  caFile?: string;
  /** An AWS-format credentials file (`[profile]` + aws_access_key_id / aws_secret_access_key). */
  credentialsFile?: string;
  /** The profile in that file (default `default`). */
  profile?: string;
}

/** `s3://BUCKET/PREFIX` → bucket and prefix; null when `url` is not an s3 URL. INVALID_ARGUMENT
 *  comes from the caller for a malformed one (see parseS3Url's errors). */
export interface S3Url {
  bucket: string;
  prefix: string;
}
