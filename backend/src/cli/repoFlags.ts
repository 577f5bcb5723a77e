/**
 * The flags of the commands that work on a repository, defined once: registering them must stay
 * cheap (main.ts registers every command at each start), so this module imports nothing; what the flags do is in repoOpen.ts and repoOwner.ts, loaded by an action.
 */
export const ALLOW_OTHER_OWNER = '--allow-other-owner';
export const ALLOW_OTHER_OWNER_HELP = 'write even though the repository belongs to another account (what this run creates belongs to you)';
