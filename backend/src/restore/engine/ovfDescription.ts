/**
 * Sets the VM's description inside an oVirt OVF: the `Description` element that is a direct
 * child of `Content` (the one in OperatingSystemSection is the OS type and stays). The engine's
 * OVF reader takes the VM description from there on import, so the VM is created described and
 * no update call is needed. Returns null when the OVF has no `Content` to put it in.
 */
export function withVmDescription(ovf: string, description: string): string | null {
  const content = /<Content\b[^>]*>/.exec(ovf);
  if (!content) return null;
  const bodyStart = content.index + content[0].length;
  const firstSection = ovf.indexOf('<Section', bodyStart);
  const limit = firstSection >= 0 ? firstSection : ovf.length;
  const head = ovf.slice(bodyStart, limit);
  const text = escapeXml(description);
  const existing = /<Description\s*\/>|<Description>[\s\S]*?<\/Description>/.exec(head);
  if (existing) {
    const at = bodyStart + existing.index;
    return `${ovf.slice(0, at)}<Description>${text}</Description>${ovf.slice(at + existing[0].length)}`;
  }
  const name = /<\/Name>/.exec(head);
  const at = name ? bodyStart + name.index + name[0].length : bodyStart;
  return `${ovf.slice(0, at)}<Description>${text}</Description>${ovf.slice(at)}`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
