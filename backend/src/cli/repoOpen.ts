/**
 * How a command opens the repository its --repo names, and who the audit log names for what it
 * does there. Loaded by the commands' actions on demand (it loads the repository module), never
 * by their registration.
 */
import { processActor, Repository } from '../repository';

/** The repository to read; a command that writes opens it with openForWriting (repoOwner.ts). */
export async function openRepository(o: { repo: string }): Promise<Repository> {
  return Repository.open(o.repo);
}

/** Who the audit log names for an action from this shell: `cli:<user>@<host>`, or the name
 *  the operator gave with --operator. */
export function cliActor(operator?: string): string {
  return operator ? `cli:${operator}` : processActor('cli');
}
