/**
 * The content pages' composition root: wires the page context (client, event stream, WebAdmin
 * bridge, texts), starts the live stream for the page's lifetime and renders the page into
 * #root, or a clear error when it cannot work (config, not in WebAdmin).
 */
import { Alert, PageSection } from '@patternfly/react-core';
import type { ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { AppContext } from '../context/appContext';
import { setupPage } from '../context/pageContext';

export function mountPage(page: () => ReactNode): void {
  const el = document.getElementById('root');
  if (!el) return;
  const root = createRoot(el);
  const setup = setupPage();
  if (!setup.ok) {
    root.render(
      <PageSection>
        <Alert id="page-setup-error" variant="danger" isInline title={setup.message} />
      </PageSection>,
    );
    return;
  }
  document.documentElement.lang = setup.ctx.locale;
  setup.ctx.stream.start();
  window.addEventListener('pagehide', () => setup.ctx.stream.stop());
  root.render(
    <AppContext.Provider value={setup.ctx}>
      {/* the iframe is the whole page: PageSection outside a PF Page brings no inset of its own */}
      <div className="olvm-backup-page" style={{ padding: '8px 16px' }}>
        {page()}
      </div>
    </AppContext.Provider>,
  );
}
