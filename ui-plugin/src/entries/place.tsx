import '@patternfly/react-core/dist/styles/base.css';
import { mountPage } from '../components/mountPage';
import { PlaceApp } from '../components/place/PlaceApp';

mountPage(() => <PlaceApp />);
