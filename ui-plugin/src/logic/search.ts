/**
 * WebAdmin's search syntax for the VM list (`Vms: name = web01`). Names the engine accepts
 * hold letters, digits, `_`, `-` and `.`; anything else is quoted, quotes escaped.
 */
export function vmSearch(name: string): string {
  return /^[\w.-]+$/.test(name) ? `Vms: name = ${name}` : `Vms: name = "${name.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
