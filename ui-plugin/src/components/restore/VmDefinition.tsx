// The Restore… dialog's view of the stored VM definition (OVF) and the new VM's NICs.
import { Alert, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, List, ListItem, Title } from '@patternfly/react-core';
import type { PointDetail, RestorePlanView } from '../../../../backend/src/api/contract';
import { formatBytes } from '../../logic/format';
import { useTexts } from '../../context/appContext';

/** The stored VM definition, and the NICs the new VM gets (MACs kept or new, vNIC profiles). */
export function VmDefinition({ point, plan, fromOvf }: { point: PointDetail; plan: RestorePlanView | null; fromOvf: boolean }) {
  const { t, locale } = useTexts();
  const ovf = point.ovf;
  const nics = fromOvf ? (plan?.vm?.nics ?? null) : null;
  return (
    <>
      <Title headingLevel="h3">{t('restoreOvfTitle')}</Title>
      {ovf ? (
        <DescriptionList id="restore-ovf" isHorizontal isCompact>
          <DescriptionListGroup>
            <DescriptionListTerm>{t('restoreOvfName')}</DescriptionListTerm>
            <DescriptionListDescription id="restore-ovf-name">{ovf.name ?? '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>{t('restoreOvfMemory')}</DescriptionListTerm>
            <DescriptionListDescription>{ovf.memoryMiB !== null ? formatBytes(ovf.memoryMiB * 1024 * 1024, locale) : '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>{t('restoreOvfCpus')}</DescriptionListTerm>
            <DescriptionListDescription>{ovf.cpus ?? '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>{t('restoreOvfOs')}</DescriptionListTerm>
            <DescriptionListDescription>{ovf.osType ?? '—'}</DescriptionListDescription>
          </DescriptionListGroup>
          <DescriptionListGroup>
            <DescriptionListTerm>{nics ? t('restoreNicsTitle') : t('restoreOvfNics')}</DescriptionListTerm>
            <DescriptionListDescription>
              <List isPlain id="restore-nics">
                {nics
                  ? nics.map((n) => (
                      <ListItem key={n.name} id={`restore-nic-${n.name}`}>
                        {n.name}: {n.mac ?? t('restoreNicNewMac')}, {n.network ?? '—'}
                        {n.vnicProfileId ? '' : ` (${t('restoreNicNoProfile')})`}
                      </ListItem>
                    ))
                  : ovf.nics.map((n) => (
                      <ListItem key={n.name}>
                        {n.name} {n.mac ?? ''} {n.network ? `(${n.network})` : ''}
                      </ListItem>
                    ))}
              </List>
            </DescriptionListDescription>
          </DescriptionListGroup>
        </DescriptionList>
      ) : (
        <Alert variant="warning" isInline isPlain title={t('restoreOvfMissing')} />
      )}
      {point.excludedDisks.length > 0 ? <Alert variant="info" isInline isPlain title={t('restoreExcluded', { disks: point.excludedDisks.map((x) => x.alias).join(', ') })} /> : null}
    </>
  );
}
