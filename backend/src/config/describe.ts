import type { ServiceConfig } from './schema';

/** The resolved configuration for the start-up log line: everything but the secret. */
export function describeConfig(c: ServiceConfig): Record<string, unknown> {
  const { engine, ...rest } = c;
  const { password, ...engineRest } = engine;
  return { ...rest, engine: { ...engineRest, password: password ? '<set>' : '<missing>' } };
}
