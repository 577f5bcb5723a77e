/**
 * A restore point's disk image as a browser download (raw or qcow2): asks the service for a
 * short-lived ticket, starts the download of its link and keeps the link to show (in case the
 * browser held the download back). Not offered (with the reason) to a user without the permits.
 */
import { useState } from 'react';
import type { DownloadTicket } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import type { ActionState } from './useAction';

export type ImageFormat = 'raw' | 'qcow2';

export interface DiskDownload {
  /** The format whose ticket is being asked for. */
  busy: ImageFormat | null;
  /** The last ticket and its absolute link. */
  ticket: { ticket: DownloadTicket; href: string } | null;
  error: unknown;
  /** The button of a format: busy while its ticket is asked for; `disabledReason` when the user
   *  may not download (the other format waits while one is asked for). */
  action: (format: ImageFormat) => ActionState;
}

export function useDiskDownload(pointId: string, device: string, disabledReason?: string): DiskDownload {
  const { client } = useApp();
  const [busy, setBusy] = useState<ImageFormat | null>(null);
  const [ticket, setTicket] = useState<DownloadTicket | null>(null);
  const [error, setError] = useState<unknown>(null);
  const download = (format: ImageFormat): void => {
    if (disabledReason || busy !== null) return;
    setBusy(format);
    setError(null);
    client.diskDownloadTicket(pointId, device, format).then(
      (tk) => {
        setBusy(null);
        setTicket(tk);
        startDownload(client.downloadUrl(tk), tk.fileName);
      },
      (err: unknown) => {
        setBusy(null);
        setError(err);
      },
    );
  };
  const action = (format: ImageFormat): ActionState => ({ run: () => download(format), busy: busy === format, ...(disabledReason ? { disabledReason } : {}) });
  return { busy, ticket: ticket ? { ticket, href: client.downloadUrl(ticket) } : null, error, action };
}

/** Starts a browser download of a URL on another origin (the service answers `attachment`). */
function startDownload(url: string, fileName: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
}
