/**
 * Body of the hashing thread (loaded as compiled hashWorker.js by streamHash.ts): SHA-256 of a
 * disk fed in order, data as transferred buffers and zero runs as lengths, so the upload's
 * thread spends no time hashing (a 2 GiB disk costs ~1.5 s of SHA-256).
 */
import { createHash } from 'crypto';
import { parentPort } from 'worker_threads';

export type HashRequest = { op: 'data'; data: Uint8Array } | { op: 'zero'; length: number } | { op: 'end' };
export type HashReply = { op: 'ack'; bytes: number } | { op: 'digest'; hex: string };

const hash = createHash('sha256');
const zeros = Buffer.alloc(4 << 20);

parentPort?.on('message', (m: HashRequest) => {
  if (m.op === 'data') {
    hash.update(m.data);
    parentPort?.postMessage({ op: 'ack', bytes: m.data.length } satisfies HashReply);
  } else if (m.op === 'zero') {
    for (let left = m.length; left > 0; left -= zeros.length) hash.update(zeros.subarray(0, Math.min(left, zeros.length)));
  } else {
    parentPort?.postMessage({ op: 'digest', hex: hash.digest('hex') } satisfies HashReply);
  }
});
