// Entry of the Backup place's page (place.html).
import '@patternfly/react-core/dist/styles/base.css';
import { mountPage } from './mountPage';
import { PlaceApp } from '../components/place/PlaceApp';

mountPage(() => <PlaceApp />);
