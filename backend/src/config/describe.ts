import type { ServiceConfig } from './schema';

/** The config as it may be logged: the engine password and the scrape token replaced by whether they are set. */
export function describeConfig(c: ServiceConfig): Record<string, unknown> {
  const { engine, auth, ...rest } = c;
  const { password, ...engineRest } = engine;
  const { scrapeToken, ...authRest } = auth;
  return { ...rest, engine: { ...engineRest, password: password ? '<set>' : '<missing>' }, auth: { ...authRest, scrapeToken: scrapeToken ? '<set>' : '<none>' } };
}
