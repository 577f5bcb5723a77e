import {
  Alert,
  Button,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  EmptyState,
  Grid,
  GridItem,
  List,
  ListItem,
  PageSection,
  Spinner,
  Stack,
  StackItem,
  Title,
  Tooltip,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { useEffect, useState } from 'react';
import { useLoader } from '../../hooks/useLoader';
import { formatBytes, formatDateTime } from '../../logic/format';
import { useApp } from '../AppContext';
import { PointTypeLabel, useReasonText } from '../common/Labels';
import { ServiceErrorAlert } from '../common/StatusAlerts';

/**
 * The Restore… dialog (a WebAdmin dialog iframe): choose a point, see its disks and the stored
 * VM definition. The restore itself waits for the service's restore API: the action is shown,
 * disabled, with what to do meanwhile.
 */
export function RestoreDialogApp({ vmId }: { vmId: string | null }) {
  const { client, t, locale } = useApp();
  const reason = useReasonText();
  const points = useLoader(() => (vmId ? client.vmPointListAll(vmId) : Promise.resolve([])), [vmId]);
  const list = [...(points.data ?? [])].sort((a, b) => Date.parse(b.completedAt) - Date.parse(a.completedAt));
  const [chosen, setChosen] = useState<string | null>(null);
  useEffect(() => {
    if (!chosen && list[0]) setChosen(list[0].id);
  }, [chosen, list]);
  const detail = useLoader(() => (chosen ? client.pointGet(chosen) : Promise.resolve(null)), [chosen]);
  const d = detail.data;

  return (
    <PageSection id="restore-dialog">
      <Stack hasGutter>
        <StackItem>
          <ServiceErrorAlert error={points.error || detail.error} onRetry={() => (points.error ? points.reload() : detail.reload())} />
        </StackItem>
        {points.loading && !points.data ? <Spinner aria-label={t('loading')} /> : null}
        {points.data && list.length === 0 ? <EmptyState id="restore-no-points" titleText={t('restoreNoPoints')} headingLevel="h3" /> : null}
        {list.length > 0 ? (
          <StackItem>
            <Title headingLevel="h3">{t('restoreChoosePoint')}</Title>
            <Table id="restore-points" aria-label={t('restoreChoosePoint')} variant="compact">
              <Thead>
                <Tr>
                  <Th screenReaderText={t('restoreChoosePoint')} />
                  <Th>{t('colTime')}</Th>
                  <Th>{t('colType')}</Th>
                  <Th>{t('colStored')}</Th>
                </Tr>
              </Thead>
              <Tbody>
                {list.map((p, i) => (
                  <Tr key={p.id} id={`restore-point-${p.id}`} isSelectable isRowSelected={p.id === chosen} onRowClick={() => setChosen(p.id)}>
                    <Td select={{ rowIndex: i, onSelect: () => setChosen(p.id), isSelected: p.id === chosen, variant: 'radio' }} />
                    <Td dataLabel={t('colTime')}>{formatDateTime(p.completedAt, locale)}</Td>
                    <Td dataLabel={t('colType')}>
                      <PointTypeLabel point={p} />
                    </Td>
                    <Td dataLabel={t('colStored')}>{formatBytes(p.bytesStored, locale)}</Td>
                  </Tr>
                ))}
              </Tbody>
            </Table>
          </StackItem>
        ) : null}
        {d ? (
          <StackItem id={`restore-detail-${d.id}`}>
            <Grid hasGutter>
              <GridItem md={7}>
                <Title headingLevel="h3">{t('restorePointDisks')}</Title>
                <Table id="restore-disks" aria-label={t('restorePointDisks')} variant="compact">
                  <Thead>
                    <Tr>
                      <Th>{t('colDisk')}</Th>
                      <Th>{t('virtualSize')}</Th>
                      <Th>{t('format')}</Th>
                      <Th>{t('colType')}</Th>
                    </Tr>
                  </Thead>
                  <Tbody>
                    {d.disks.map((disk) => (
                      <Tr key={disk.device} id={`restore-disk-${disk.device}`}>
                        <Td dataLabel={t('colDisk')}>{disk.alias ?? disk.device}</Td>
                        <Td dataLabel={t('virtualSize')}>{formatBytes(disk.virtualSize, locale)}</Td>
                        <Td dataLabel={t('format')}>{disk.format}</Td>
                        <Td dataLabel={t('colType')}>{disk.mode === 'full' ? `${t('typeFull')} (${reason(disk.reason)})` : t('typeIncremental')}</Td>
                      </Tr>
                    ))}
                  </Tbody>
                </Table>
                {d.excludedDisks.length > 0 ? <Alert variant="info" isInline isPlain title={t('restoreExcluded', { disks: d.excludedDisks.map((x) => x.alias).join(', ') })} /> : null}
              </GridItem>
              <GridItem md={5}>
                <Title headingLevel="h3">{t('restoreOvfTitle')}</Title>
                {d.ovf ? (
                  <DescriptionList id="restore-ovf" isHorizontal isCompact>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('restoreOvfName')}</DescriptionListTerm>
                      <DescriptionListDescription id="restore-ovf-name">{d.ovf.name ?? '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('restoreOvfMemory')}</DescriptionListTerm>
                      <DescriptionListDescription>{d.ovf.memoryMiB !== null ? formatBytes(d.ovf.memoryMiB * 1024 * 1024, locale) : '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('restoreOvfCpus')}</DescriptionListTerm>
                      <DescriptionListDescription>{d.ovf.cpus ?? '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('restoreOvfOs')}</DescriptionListTerm>
                      <DescriptionListDescription>{d.ovf.osType ?? '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                    <DescriptionListGroup>
                      <DescriptionListTerm>{t('restoreOvfNics')}</DescriptionListTerm>
                      <DescriptionListDescription>
                        <List isPlain>
                          {d.ovf.nics.map((n) => (
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
              </GridItem>
            </Grid>
          </StackItem>
        ) : chosen && detail.loading ? (
          <Spinner aria-label={t('loading')} />
        ) : null}
        {chosen ? (
          <StackItem>
            <Tooltip content={t('restoreNotYet', { point: chosen })}>
              <Button id="restore-submit" variant="primary" isAriaDisabled aria-describedby="restore-not-yet">
                {t('restoreAction')}
              </Button>
            </Tooltip>
            <Alert id="restore-not-yet" variant="info" isInline isPlain title={t('restoreNotYet', { point: chosen })} />
          </StackItem>
        ) : null}
      </Stack>
    </PageSection>
  );
}
