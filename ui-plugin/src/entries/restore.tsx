// Entry of the Restore… dialog's page (restore.html); the VM, the point and whether the engine
// still has the VM come in its URL (constants.ts restoreDialogUrl).
import '@patternfly/react-core/dist/styles/base.css';
import { mountPage } from './mountPage';
import { RestoreDialogApp } from '../components/restore/RestoreDialogApp';
import { pageParam } from '../context/pageContext';

mountPage(() => <RestoreDialogApp vmId={pageParam('vmId')} vmName={pageParam('vmName') ?? ''} pointId={pageParam('pointId')} deleted={pageParam('deleted') === '1'} />);
