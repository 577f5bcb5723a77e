import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * The engine's error replies (reference §1.5): a `fault {reason, detail}` body with the status the
 * engine maps the failure to. Validation failures of a command carry reason "Operation Failed"
 * and the translated messages in brackets as detail ("[Cannot run VM. VM is running.]"), with
 * 409 for CONFLICT-typed messages and 400 for the rest (EngineMessage error types).
 * `body: false` is a 404 without a body: what the engine answers to a GET of an entity that does
 * not exist (or that a filtered user may not see): BaseBackendResource.handleError builds a bare
 * 404 response for EntityNotFoundException.
 */
export class EngineFault extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly detail: string,
    readonly body: boolean = true,
  ) {
    super(`${status} ${reason}: ${detail}`);
  }
}

export const notFound = (): EngineFault => new EngineFault(404, 'Not Found', '', false);
/** A command's validation failure. */
export const operationFailed = (status: 400 | 403 | 404 | 409 | 500, ...messages: string[]): EngineFault =>
  new EngineFault(status, 'Operation Failed', `[${messages.join(', ')}]`);
/** CompletenessAssertor's message for missing mandatory fields: "Vm [name] required for add". */
export const incomplete = (type: string, fields: string[], verb = 'add'): EngineFault =>
  new EngineFault(400, 'Incomplete parameters', `${type} [${fields.join(', ')}] required for ${verb}`);
export const badRequest = (detail: string): EngineFault => new EngineFault(400, 'Operation Failed', detail);
export const invalidEnum = (value: string, type: string, values: string[]): EngineFault =>
  new EngineFault(400, 'Invalid value', `${value} is not a member of ${type}. Possible values for ${type} are: ${values.join(', ')}`);

interface Injection {
  method: string;
  pathPrefix: string;
  status?: number;
  remaining: number;
  hang: boolean;
  /** holdNext: the request waits for this before it is served as usual */
  hold?: { arrived: () => void; released: Promise<void> };
}

/** A request held by holdNext: `held` resolves once one waits; `release()` lets it through. */
export interface HeldRequest {
  held: Promise<void>;
  release: () => void;
}

/**
 * Test hooks: the next requests matching a method and a path prefix answer a fault with the
 * given status (failNext), never answer (hangNext), or wait until the test lets them through
 * (holdNext: a caller mid-way, as long as the test needs). The prefix is matched against the full
 * path ('/ovirt-engine/api/vms/...', '/images/...') and also against the path below the API root
 * ('/vms/...'), so both spellings work.
 */
export class FaultInjector {
  private readonly injections: Injection[] = [];
  private readonly hung = new Set<Response>();

  failNext(p: { method: string; pathPrefix: string; status: number; times?: number }): void {
    this.injections.push({ method: p.method.toUpperCase(), pathPrefix: p.pathPrefix, status: p.status, remaining: p.times ?? 1, hang: false });
  }

  hangNext(p: { method: string; pathPrefix: string }): void {
    this.injections.push({ method: p.method.toUpperCase(), pathPrefix: p.pathPrefix, remaining: 1, hang: true });
  }

  holdNext(p: { method: string; pathPrefix: string }): HeldRequest {
    let arrived!: () => void;
    let release!: () => void;
    const held = new Promise<void>((res) => (arrived = res));
    const released = new Promise<void>((res) => (release = res));
    this.injections.push({ method: p.method.toUpperCase(), pathPrefix: p.pathPrefix, remaining: 1, hang: false, hold: { arrived, released } });
    return { held, release };
  }

  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const full = req.path;
      const below = full.replace(/^\/ovirt-engine\/api(\/v4)?/, '');
      const i = this.injections.findIndex(
        (inj) => inj.method === req.method && (full.startsWith(inj.pathPrefix) || (below !== full && below.startsWith(inj.pathPrefix))),
      );
      const inj = i >= 0 ? this.injections[i] : undefined;
      if (!inj) {
        next();
        return;
      }
      if (--inj.remaining <= 0) this.injections.splice(i, 1);
      if (inj.hold) {
        const { arrived, released } = inj.hold;
        this.hung.add(res); // a shutdown meanwhile ends it like a hung one
        res.on('close', () => this.hung.delete(res));
        arrived();
        void released.then(() => {
          this.hung.delete(res);
          if (!res.destroyed) next();
        });
        return;
      }
      if (inj.hang) {
        this.hung.add(res);
        res.on('close', () => this.hung.delete(res));
        return; // never answered; close() destroys the connection
      }
      const status = inj.status ?? 500;
      next(new EngineFault(status, 'Operation Failed', `[Simulated failure of ${req.method} ${full} (status ${status})]`));
    };
  }

  /** Ends the hanging requests (server shutdown). */
  releaseAll(): void {
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
  }
}
