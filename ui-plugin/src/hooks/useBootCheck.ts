/**
 * A point's last boot check for its modal: the stored verdict (`GET /points/{id}/bootcheck`) and
 * its screenshot, fetched with the user's token like every call of the plugin (an <img src> could
 * not send it) and turned into a URL an <img> shows: the PNG as it came, a PPM drawn on a canvas
 * first (logic/ppm.ts). The object URL is revoked when the modal closes.
 */
import { useEffect } from 'react';
import type { BootCheckView } from '../../../backend/src/api/contract';
import { useApp } from '../context/appContext';
import { decodePpm } from '../logic/ppm';
import { ServiceError } from '../services/serviceError';
import { useLoader, type Loaded } from './useLoader';

export interface BootCheckDetail {
  record: BootCheckView | null;
  /** A URL for <img>; null when none was kept or it could not be read. */
  screenshot: string | null;
}

export function useBootCheck(pointId: string): Loaded<BootCheckDetail> {
  const { client } = useApp();
  const loaded = useLoader(async (): Promise<BootCheckDetail> => {
    const record = await client.bootCheckGet(pointId).catch((err: unknown) => {
      // never checked (or the check was just removed with its point): the modal says so
      if (err instanceof ServiceError && err.kind === 'not-found') return null;
      throw err;
    });
    if (!record?.screenshot) return { record, screenshot: null };
    const blob = await client.bootCheckScreenshot(pointId).catch(() => null);
    return { record, screenshot: blob ? await imageUrl(blob) : null };
  }, [client, pointId]);
  const url = loaded.data?.screenshot ?? null;
  useEffect(
    () => () => {
      if (url?.startsWith('blob:')) URL.revokeObjectURL(url);
    },
    [url],
  );
  return loaded;
}

async function imageUrl(blob: Blob): Promise<string | null> {
  if (blob.type === 'image/png') return URL.createObjectURL(blob);
  const px = decodePpm(new Uint8Array(await blob.arrayBuffer()));
  if (!px) return null;
  const canvas = document.createElement('canvas');
  canvas.width = px.width;
  canvas.height = px.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  ctx.putImageData(new ImageData(px.rgba, px.width, px.height), 0, 0);
  return canvas.toDataURL('image/png');
}
