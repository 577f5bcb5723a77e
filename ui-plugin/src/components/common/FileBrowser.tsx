// Browse files… on a point (the points tables): the action, and the modal that shows the point's
// filesystems, a folder (breadcrumbs, name, size, mode, modified, type), a search by glob, and
// downloads the checked items. Names arrive escaped by the service and are drawn as text.
import { useState } from 'react';
import { Alert, Breadcrumb, BreadcrumbItem, Button, Checkbox, Content, Form, Modal, ModalBody, ModalFooter, ModalHeader, Progress, Spinner, TextInput, Toolbar, ToolbarContent, ToolbarItem } from '@patternfly/react-core';
import type { FileEntry, FileEntryType, FoundFile, PointSummary } from '../../../../backend/src/api/contract';
import { useTexts } from '../../context/appContext';
import { itemKey, rootOf, useFileBrowser, type FileBrowser } from '../../hooks/useFileBrowser';
import { browseFilesDenial, deniedText, type VmRef } from '../../logic/access';
import { breadcrumbs, childPathB64, downloadable, modeText } from '../../logic/fileBrowse';
import { formatBytes, formatDateTime } from '../../logic/format';
import type { MessageKey } from '../../intl/messages';
import { ActionButton } from './ActionButton';
import { DataTable, type DataColumn } from './DataTable';

/** Browse files… for one point: disabled with the reason without the download permits. */
export function BrowseFilesButton({ point, vm }: { point: PointSummary; vm: VmRef | undefined }) {
  const { t, locale } = useTexts();
  const [open, setOpen] = useState(false);
  const reason = deniedText(t, browseFilesDenial(vm));
  return (
    <>
      <ActionButton
        id={`point-files-${point.id}`}
        variant="link"
        isInline
        action={{ run: () => setOpen(true), busy: false, ...(reason ? { disabledReason: reason } : {}) }}
        aria-label={t('browseFilesOf', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })}
      >
        {t('browseFilesButton')}
      </ActionButton>
      {open ? <FileBrowserModal point={point} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

const typeKey = (type: FileEntryType): MessageKey => `fileType${type.charAt(0).toUpperCase()}${type.slice(1)}` as MessageKey;

function FileBrowserModal({ point, onClose }: { point: PointSummary; onClose: () => void }) {
  const { t, locale, errorText } = useTexts();
  const fb = useFileBrowser(point.id);
  const [glob, setGlob] = useState('');
  const s = fb.session;
  return (
    <Modal id="files-dialog" isOpen variant="large" onClose={onClose} aria-labelledby="files-dialog-title">
      <ModalHeader title={t('filesTitle', { vm: point.vmName, time: formatDateTime(point.completedAt, locale) })} labelId="files-dialog-title" />
      <ModalBody>
        {fb.sessionError ? <Alert id="files-session-error" variant="danger" isInline title={errorText(fb.sessionError)} /> : null}
        {!fb.sessionError && s?.state !== 'ready' ? (
          <div id="files-opening">
            <Spinner size="md" aria-label={t('loading')} /> {t('filesOpening', { seconds: fb.waitedSeconds })}
          </div>
        ) : null}
        {s?.state === 'ready' ? (
          <>
            <Form
              onSubmit={(e) => {
                e.preventDefault();
                fb.search(glob);
              }}
            >
              <Toolbar id="files-search-toolbar">
                <ToolbarContent>
                  <ToolbarItem>
                    <TextInput id="files-search" type="search" aria-label={t('filesSearchLabel')} placeholder={t('filesSearchLabel')} value={glob} onChange={(_e, v) => setGlob(v)} />
                  </ToolbarItem>
                  <ToolbarItem>
                    <ActionButton id="files-search-button" variant="secondary" action={{ run: () => fb.search(glob), busy: fb.searching, ...(glob.trim() ? {} : { blocked: true }) }}>
                      {t('filesSearchButton')}
                    </ActionButton>
                  </ToolbarItem>
                  {fb.found ? (
                    <ToolbarItem>
                      <Button id="files-search-clear" variant="link" onClick={fb.clearSearch}>
                        {t('filesSearchClear')}
                      </Button>
                    </ToolbarItem>
                  ) : null}
                </ToolbarContent>
              </Toolbar>
            </Form>
            {fb.searchError ? <Alert id="files-search-error" variant="danger" isInline title={errorText(fb.searchError)} /> : null}
            {fb.found ? <SearchResults fb={fb} /> : fb.at ? <Folder fb={fb} /> : <Filesystems fb={fb} />}
          </>
        ) : null}
        {fb.downloadError ? <Alert id="files-download-error" variant="danger" isInline title={errorText(fb.downloadError)} /> : null}
        {fb.progress ? <Progress id="files-download-progress" value={(fb.progress.done / fb.progress.total) * 100} title={t('filesDownloading', { done: fb.progress.done + 1, total: fb.progress.total })} /> : null}
        <Content component="small" id="files-restore-into-note">
          {t('filesDownloadHint')} {t('filesRestoreIntoMissing')}
        </Content>
      </ModalBody>
      <ModalFooter>
        <ActionButton id="files-download" variant="primary" action={fb.download}>
          {t('filesDownloadButton')}
        </ActionButton>
        <span id="files-selected-count">{t('filesSelected', { count: fb.selected.size })}</span>
        <Button id="files-close" variant="link" onClick={onClose}>
          {t('close')}
        </Button>
      </ModalFooter>
    </Modal>
  );
}

function Filesystems({ fb }: { fb: FileBrowser }) {
  const { t, locale } = useTexts();
  const list = fb.session?.filesystems ?? [];
  if (list.length === 0) return <p id="files-no-filesystems">{t('filesNoFilesystems')}</p>;
  return (
    <DataTable
      id="files-filesystems"
      ariaLabel={t('filesFilesystems')}
      rows={list}
      rowKey={(f) => f.name}
      rowId={(f) => `files-fs-${f.name.replace(/[^A-Za-z0-9]/g, '_')}`}
      emptyText={t('filesNoFilesystems')}
      columns={[
        {
          key: 'name',
          title: t('colFsName'),
          sortValue: (f) => f.name,
          render: (f) =>
            f.mounted ? (
              <Button variant="link" isInline className="files-fs-open" onClick={() => fb.go(rootOf(f.name))}>
                {f.name}
              </Button>
            ) : (
              <span>
                {f.name} — {t('filesNotMounted', { reason: f.error ?? '' })}
              </span>
            ),
        },
        { key: 'type', title: t('colFsType'), sortValue: (f) => f.type, render: (f) => f.type },
        { key: 'label', title: t('colFsLabel'), render: (f) => f.label ?? '' },
        { key: 'size', title: t('colFsSize'), sortValue: (f) => f.size ?? 0, render: (f) => (f.size === null ? '' : formatBytes(f.size, locale)) },
      ]}
    />
  );
}

function Folder({ fb }: { fb: FileBrowser }) {
  const { t, locale, errorText } = useTexts();
  const at = fb.at;
  if (!at) return null;
  const crumbs = breadcrumbs(at.filesystem, at.pathB64);
  const columns: Array<DataColumn<FileEntry>> = [
    {
      key: 'select',
      title: t('colSelect'),
      render: (e) => {
        const pathB64 = childPathB64(at.pathB64, e.nameB64);
        return downloadable(e.type) ? (
          <Checkbox
            id={`files-select-${e.nameB64.replace(/[^A-Za-z0-9]/g, '_')}`}
            className="files-select"
            aria-label={t('filesSelectItem', { name: e.name })}
            isChecked={fb.selected.has(itemKey(at.filesystem, pathB64))}
            onChange={(_ev, on) => fb.toggle({ filesystem: at.filesystem, pathB64, name: e.name, type: e.type }, on)}
          />
        ) : null;
      },
    },
    {
      key: 'name',
      title: t('colFileName'),
      sortValue: (e) => e.name,
      filterText: (e) => e.name,
      render: (e) =>
        e.type === 'directory' ? (
          <Button variant="link" isInline className="files-folder" data-name={e.name} onClick={() => fb.go({ filesystem: at.filesystem, pathB64: childPathB64(at.pathB64, e.nameB64) })}>
            {e.name}
          </Button>
        ) : (
          <span className="files-name" data-name={e.name}>
            {e.name}
            {e.target !== null ? ` → ${e.target}` : ''}
          </span>
        ),
    },
    { key: 'size', title: t('colFileSize'), sortValue: (e) => e.size, render: (e) => (e.type === 'directory' ? '' : formatBytes(e.size, locale)) },
    { key: 'mode', title: t('colFileMode'), render: (e) => <code>{modeText(e.type, e.mode)}</code> },
    { key: 'modified', title: t('colFileModified'), sortValue: (e) => Date.parse(e.modifiedAt), render: (e) => formatDateTime(e.modifiedAt, locale) },
    { key: 'type', title: t('colFileType'), sortValue: (e) => e.type, render: (e) => t(typeKey(e.type)) },
  ];
  return (
    <>
      <Breadcrumb id="files-breadcrumb">
        <BreadcrumbItem>
          <Button variant="link" isInline id="files-crumb-filesystems" onClick={() => fb.go(null)}>
            {t('filesFilesystems')}
          </Button>
        </BreadcrumbItem>
        {crumbs.map((c, i) => (
          <BreadcrumbItem key={c.pathB64} isActive={i === crumbs.length - 1}>
            {i === crumbs.length - 1 ? (
              <span className="files-crumb">{c.label}</span>
            ) : (
              <Button variant="link" isInline className="files-crumb" onClick={() => fb.go({ filesystem: at.filesystem, pathB64: c.pathB64 })}>
                {c.label}
              </Button>
            )}
          </BreadcrumbItem>
        ))}
      </Breadcrumb>
      {fb.listingError ? <Alert id="files-list-error" variant="danger" isInline title={errorText(fb.listingError)} /> : null}
      {fb.listingLoading ? <Spinner size="md" aria-label={t('loading')} /> : null}
      {fb.listing?.truncated ? <Alert variant="info" isInline title={t('filesTruncated', { count: fb.listing.entries.length })} /> : null}
      {fb.listing ? (
        <DataTable id="files-folder" ariaLabel={t('colFileName')} rows={fb.listing.entries} rowKey={(e) => e.nameB64} rowId={(e) => `files-entry-${e.nameB64.replace(/[^A-Za-z0-9]/g, '_')}`} emptyText={t('filesEmptyFolder')} columns={columns} initialSort={{ key: 'name', direction: 'asc' }} perPage={50} />
      ) : null}
    </>
  );
}

function SearchResults({ fb }: { fb: FileBrowser }) {
  const { t, locale } = useTexts();
  const found = fb.found;
  if (!found) return null;
  const columns: Array<DataColumn<FoundFile>> = [
    {
      key: 'select',
      title: t('colSelect'),
      render: (f) =>
        downloadable(f.type) ? (
          <Checkbox
            id={`files-found-select-${(f.filesystem + f.pathB64).replace(/[^A-Za-z0-9]/g, '_')}`}
            className="files-select"
            aria-label={t('filesSelectItem', { name: f.path })}
            isChecked={fb.selected.has(itemKey(f.filesystem, f.pathB64))}
            onChange={(_ev, on) => fb.toggle({ filesystem: f.filesystem, pathB64: f.pathB64, name: f.path.slice(f.path.lastIndexOf('/') + 1), type: f.type }, on)}
          />
        ) : null,
    },
    { key: 'fs', title: t('colFsName'), sortValue: (f) => f.filesystem, render: (f) => f.filesystem },
    { key: 'path', title: t('colFilePath'), sortValue: (f) => f.path, filterText: (f) => f.path, render: (f) => <span className="files-found-path">{f.path}</span> },
    { key: 'size', title: t('colFileSize'), sortValue: (f) => f.size, render: (f) => (f.type === 'directory' ? '' : formatBytes(f.size, locale)) },
    { key: 'mode', title: t('colFileMode'), render: (f) => <code>{modeText(f.type, f.mode)}</code> },
    { key: 'modified', title: t('colFileModified'), sortValue: (f) => Date.parse(f.modifiedAt), render: (f) => formatDateTime(f.modifiedAt, locale) },
  ];
  return (
    <>
      <p id="files-search-summary">{found.results.length === 0 ? t('filesSearchNone', { glob: found.glob }) : t('filesSearchResults', { count: found.results.length, glob: found.glob })}</p>
      {found.truncated ? <Alert variant="info" isInline title={t('filesSearchTruncated')} /> : null}
      <DataTable id="files-found" ariaLabel={t('filesSearchLabel')} rows={found.results} rowKey={(f) => `${f.filesystem}:${f.pathB64}`} emptyText={t('filesSearchNone', { glob: found.glob })} columns={columns} perPage={50} />
    </>
  );
}
