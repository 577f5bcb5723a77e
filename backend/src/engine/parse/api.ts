import type { ApiInfo } from '../types';
import { entityOf, Fields } from './fields';

/** `GET /api` (reference §1.1; ovirt-ui-plugin.md §5.9). */
export function parseApiInfo(body: unknown): ApiInfo {
  const f = new Fields('api', entityOf(body, 'api root'));
  const product = f.sub('product_info');
  const v = product?.sub('version');
  return {
    productName: product?.str('name'),
    vendor: product?.str('vendor'),
    version: v
      ? {
          major: v.int('major') ?? 0,
          minor: v.int('minor') ?? 0,
          build: v.int('build') ?? 0,
          revision: v.int('revision') ?? 0,
          fullVersion: v.str('full_version') ?? '',
        }
      : undefined,
    authenticatedUserId: f.refId('authenticated_user'),
    effectiveUserId: f.refId('effective_user'),
    time: f.date('time'),
  };
}
