/**
 * Checks a ui-plugins descriptor as the engine's PluginData does (reference §1.2): an invalid
 * attribute makes WebAdmin skip the whole plugin with only a log line, so the build checks it.
 */
export function descriptorProblems(d: unknown): string[] {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return ['the descriptor is not a JSON object'];
  const o = d as Record<string, unknown>;
  const problems: string[] = [];
  const nonEmpty = (k: string, required: boolean): void => {
    const v = o[k];
    if (v === undefined) {
      if (required) problems.push(`${k} is required`);
    } else if (typeof v !== 'string' || v.trim() === '') problems.push(`${k} must be a non-empty string`);
  };
  nonEmpty('name', true);
  nonEmpty('url', true);
  nonEmpty('resourcePath', false);
  if (o.config !== undefined && (typeof o.config !== 'object' || o.config === null || Array.isArray(o.config))) problems.push('config must be an object');
  if (o.lazyLoad !== undefined && typeof o.lazyLoad !== 'boolean') problems.push('lazyLoad must be a boolean');
  if (typeof o.name === 'string' && typeof o.url === 'string' && !o.url.startsWith(`plugin/${o.name}/`)) {
    problems.push(`url should be plugin/${o.name}/… so WebAdmin serves it from resourcePath`);
  }
  return problems;
}
