import '@patternfly/react-core/dist/styles/base.css';
import { mountPage } from './mountPage';
import { PlaceApp } from '../components/place/PlaceApp';

mountPage(() => <PlaceApp />);
