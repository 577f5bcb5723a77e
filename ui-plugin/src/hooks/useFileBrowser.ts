/**
 * Browse files… of one point: opens the caller's file-browsing session (the service starts an
 * appliance, ~20 s under TCG: polled until ready or failed, at most 6 minutes), then lists the
 * folder shown, searches by glob, keeps the checked items and downloads them one by one (a file
 * as it is, a folder as .tar.gz), saving each from a blob. The session is closed when the modal
 * closes (unmount). Errors are the service's own words.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { FileFindResponse, FileListResponse, FileSessionView } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { bytesToB64, downloadsOf, type SelectedItem } from '../logic/fileBrowse';
import type { ActionState } from './useAction';

const POLL_MS = 1500;
const OPEN_LIMIT_MS = 360_000;

export interface FolderAt {
  filesystem: string;
  pathB64: string;
}

export interface FileBrowser {
  session: FileSessionView | null;
  /** Opening failed or the session ended: the service's words. */
  sessionError: unknown;
  /** Seconds since the open was asked for (the progress while the appliance starts). */
  waitedSeconds: number;
  /** The folder shown; null: the filesystems list. */
  at: FolderAt | null;
  go: (at: FolderAt | null) => void;
  listing: FileListResponse | null;
  listingError: unknown;
  listingLoading: boolean;
  search: (glob: string) => void;
  clearSearch: () => void;
  found: FileFindResponse | null;
  searchError: unknown;
  searching: boolean;
  selected: ReadonlyMap<string, SelectedItem>;
  toggle: (item: SelectedItem, on: boolean) => void;
  download: ActionState;
  /** `n / total` while downloading, and the last download's error. */
  progress: { done: number; total: number } | null;
  downloadError: unknown;
}

export const itemKey = (filesystem: string, pathB64: string): string => `${filesystem}\u0000${pathB64}`;

export function useFileBrowser(pointId: string): FileBrowser {
  const { client } = useApp();
  const [session, setSession] = useState<FileSessionView | null>(null);
  const [sessionError, setSessionError] = useState<unknown>(null);
  const [waitedSeconds, setWaited] = useState(0);
  const [at, setAt] = useState<FolderAt | null>(null);
  const [listing, setListing] = useState<FileListResponse | null>(null);
  const [listingError, setListingError] = useState<unknown>(null);
  const [listingLoading, setListingLoading] = useState(false);
  const [found, setFound] = useState<FileFindResponse | null>(null);
  const [searchError, setSearchError] = useState<unknown>(null);
  const [searching, setSearching] = useState(false);
  const [selected, setSelected] = useState<Map<string, SelectedItem>>(new Map());
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const listSeq = useRef(0);

  // open, poll until ready, close on unmount
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = Date.now();
    const poll = (s: FileSessionView): void => {
      if (stopped) return;
      setSession(s);
      setWaited(Math.round((Date.now() - started) / 1000));
      if (s.state === 'failed') {
        setSessionError(new Error(s.error?.message ?? 'the session failed to open'));
        return;
      }
      if (s.state === 'ready') return;
      if (Date.now() - started > OPEN_LIMIT_MS) {
        setSessionError(new Error(`the restore point did not open within ${OPEN_LIMIT_MS / 60_000} minutes`));
        return;
      }
      timer = setTimeout(() => void client.fileSessionGet(pointId).then(poll, fail), POLL_MS);
    };
    const fail = (err: unknown): void => {
      if (!stopped) setSessionError(err);
    };
    void client.fileSessionOpen(pointId).then(poll, fail);
    return () => {
      stopped = true;
      clearTimeout(timer);
      // the appliance is heavy: let the service stop it now rather than when it goes idle
      client.fileSessionClose(pointId).catch(() => undefined);
    };
  }, [client, pointId]);

  const ready = session?.state === 'ready';
  useEffect(() => {
    if (!ready || !at) {
      setListing(null);
      return;
    }
    const mine = ++listSeq.current;
    setListingLoading(true);
    setListingError(null);
    client.fileList(pointId, at.filesystem, at.pathB64).then(
      (l) => {
        if (mine !== listSeq.current) return;
        setListing(l);
        setListingLoading(false);
      },
      (err: unknown) => {
        if (mine !== listSeq.current) return;
        setListing(null);
        setListingError(err);
        setListingLoading(false);
      },
    );
  }, [client, pointId, ready, at]);

  const go = useCallback((next: FolderAt | null) => {
    setFound(null);
    setAt(next);
  }, []);

  const search = useCallback(
    (glob: string) => {
      if (!glob.trim() || !ready) return;
      setSearching(true);
      setSearchError(null);
      client.fileFind(pointId, glob.trim()).then(
        (r) => {
          setFound(r);
          setSearching(false);
        },
        (err: unknown) => {
          setSearchError(err);
          setSearching(false);
        },
      );
    },
    [client, pointId, ready],
  );

  const toggle = useCallback((item: SelectedItem, on: boolean) => {
    setSelected((prev) => {
      const next = new Map(prev);
      if (on) next.set(itemKey(item.filesystem, item.pathB64), item);
      else next.delete(itemKey(item.filesystem, item.pathB64));
      return next;
    });
  }, []);

  const items = downloadsOf([...selected.values()]);
  const download: ActionState = {
    busy: progress !== null,
    ...(items.length === 0 ? { blocked: true } : {}),
    run: () => {
      if (progress !== null || items.length === 0) return;
      setDownloadError(null);
      setProgress({ done: 0, total: items.length });
      void (async () => {
        try {
          for (const [i, item] of items.entries()) {
            const { blob, fileName } = await client.fileDownload(pointId, item.filesystem, item.pathB64);
            save(blob, fileName ?? item.fileName);
            setProgress({ done: i + 1, total: items.length });
          }
        } catch (err) {
          setDownloadError(err);
        } finally {
          setProgress(null);
        }
      })();
    },
  };

  return {
    session,
    sessionError,
    waitedSeconds,
    at,
    go,
    listing,
    listingError,
    listingLoading,
    search,
    clearSearch: () => setFound(null),
    found,
    searchError,
    searching,
    selected,
    toggle,
    download,
    progress,
    downloadError,
  };
}

/** The root folder of a filesystem. */
export function rootOf(filesystem: string): FolderAt {
  return { filesystem, pathB64: bytesToB64(new Uint8Array([0x2f])) };
}

/** Saves a blob under a name (the browser's download). */
function save(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // the browser has taken the blob once the click is handled
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
