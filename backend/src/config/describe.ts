import type { ServiceConfig } from './schema';

/** The config as it may be logged: the engine password, the repository's passphrase and the
 *  scrape token replaced by whether they are set. */
export function describeConfig(c: ServiceConfig): Record<string, unknown> {
  const { engine, repository, auth, ...rest } = c;
  const { password, ...engineRest } = engine;
  const { passphrase, ...repositoryRest } = repository;
  const { scrapeToken, ...authRest } = auth;
  return {
    ...rest,
    engine: { ...engineRest, password: password ? '<set>' : '<missing>' },
    repository: { ...repositoryRest, passphrase: passphrase ? '<set>' : '<none>' },
    auth: { ...authRest, scrapeToken: scrapeToken ? '<set>' : '<none>' },
  };
}
