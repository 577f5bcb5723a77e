// Entry of the hidden host page (plugin.html): no React here, so WebAdmin's start stays light.
import { startHost } from '../integrations/host';

startHost();
