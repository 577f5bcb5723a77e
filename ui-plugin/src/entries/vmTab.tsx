// Entry of the VMs' Backups tab page (vm-tab.html).
import '@patternfly/react-core/dist/styles/base.css';
import { mountPage } from './mountPage';
import { VmTabApp } from '../components/vmTab/VmTabApp';
import { pageParam } from '../context/pageContext';

// WebAdmin gives the tab no VM; the host page puts it into this page's URL (integrations/places.ts)
mountPage(() => <VmTabApp vmId={pageParam('vmId')} vmName={pageParam('vmName') ?? ''} />);
