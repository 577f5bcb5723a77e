/**
 * Protocol numbers of the NBD wire format, named as in the NBD protocol specification
 * (doc/proto.md of the reference implementation). Everything on the wire is big-endian.
 * Only what our client and our server send or must recognise is listed; the limits the server
 * applies to its peers are at the end.
 */

// ---- handshake (fixed newstyle) --------------------------------------------------------------

/** "NBDMAGIC": first 8 bytes the server sends, oldstyle and newstyle alike. */
export const NBD_INIT_MAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": second 8 bytes from a newstyle server, and the prefix of every option we send. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Second magic of an oldstyle server, which cannot negotiate anything we need. */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Prefix of every option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;

// Handshake flags (server -> client, 16 bits).
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
// Client flags (client -> server, 32 bits).
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;
/** Bytes of zero padding after an NBD_OPT_EXPORT_NAME reply, unless NBD_FLAG_C_NO_ZEROES. */
export const NBD_EXPORT_NAME_PADDING = 124;

// Options.
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

// Option reply types. Bit 31 marks an error.
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;

export const NBD_REP_ERR_NAMES: Readonly<Record<number, string>> = {
  [NBD_REP_ERR_UNSUP]: 'NBD_REP_ERR_UNSUP',
  [NBD_REP_ERR_POLICY]: 'NBD_REP_ERR_POLICY',
  [NBD_REP_ERR_INVALID]: 'NBD_REP_ERR_INVALID',
  [NBD_REP_ERR_PLATFORM]: 'NBD_REP_ERR_PLATFORM',
  [NBD_REP_ERR_TLS_REQD]: 'NBD_REP_ERR_TLS_REQD',
  [NBD_REP_ERR_UNKNOWN]: 'NBD_REP_ERR_UNKNOWN',
  [NBD_REP_ERR_SHUTDOWN]: 'NBD_REP_ERR_SHUTDOWN',
  [NBD_REP_ERR_BLOCK_SIZE_REQD]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [NBD_REP_ERR_TOO_BIG]: 'NBD_REP_ERR_TOO_BIG',
};

// NBD_REP_INFO payload types (also what NBD_OPT_GO may ask for).
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// Transmission flags (16 bits, sent in NBD_INFO_EXPORT).
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// ---- transmission ----------------------------------------------------------------------------

export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** magic(4) flags(2) type(2) cookie(8) offset(8) length(4) */
export const NBD_REQUEST_SIZE = 28;
/** magic(4) error(4) cookie(8) */
export const NBD_SIMPLE_REPLY_SIZE = 16;
/** magic(4) flags(2) type(2) cookie(8) length(4) */
export const NBD_STRUCTURED_REPLY_SIZE = 20;

// Commands.
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

export const NBD_CMD_NAMES: Readonly<Record<number, string>> = {
  [NBD_CMD_READ]: 'read',
  [NBD_CMD_WRITE]: 'write',
  [NBD_CMD_DISC]: 'disconnect',
  [NBD_CMD_FLUSH]: 'flush',
  [NBD_CMD_TRIM]: 'trim',
  [NBD_CMD_CACHE]: 'cache',
  [NBD_CMD_WRITE_ZEROES]: 'write-zeroes',
  [NBD_CMD_BLOCK_STATUS]: 'block-status',
};

// Command flags.
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// Structured reply flags and chunk types. Bit 15 of the type marks an error chunk.
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR_BIT = 1 << 15;
export const NBD_REPLY_TYPE_ERROR = NBD_REPLY_TYPE_ERROR_BIT + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = NBD_REPLY_TYPE_ERROR_BIT + 2;

// Error values of the reply error field. The spec fixes these numbers independently of the
// server's platform errno values.
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  [NBD_EPERM]: 'EPERM',
  [NBD_EIO]: 'EIO',
  [NBD_ENOMEM]: 'ENOMEM',
  [NBD_EINVAL]: 'EINVAL',
  [NBD_ENOSPC]: 'ENOSPC',
  [NBD_EOVERFLOW]: 'EOVERFLOW',
  [NBD_ENOTSUP]: 'ENOTSUP',
  [NBD_ESHUTDOWN]: 'ESHUTDOWN',
};

/** 'EIO' for 5; servers may send values outside the spec's list, those read 'errno 42'. */
export function nbdErrnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

// ---- metadata contexts -----------------------------------------------------------------------

/** base:allocation: the range is unallocated (reads may or may not return zeroes). */
export const NBD_STATE_HOLE = 1;
/** base:allocation: the range reads as zeroes. */
export const NBD_STATE_ZERO = 2;
/** qemu:dirty-bitmap:NAME: the range is dirty in the exported bitmap. */
export const NBD_STATE_DIRTY = 1;

// ---- limits ----------------------------------------------------------------------------------

/** Block sizes assumed when the server sends no NBD_INFO_BLOCK_SIZE (spec defaults). */
export const DEFAULT_MIN_BLOCK = 1;
export const DEFAULT_PREFERRED_BLOCK = 4096;
export const DEFAULT_MAX_BLOCK = 32 * 1024 * 1024;

/** The request length field is 32 bits. */
export const MAX_REQUEST_LENGTH = 0xffffffff;
/**
 * Largest length we put in one BLOCK_STATUS / WRITE_ZEROES / TRIM request: just under 4 GiB and
 * a multiple of 1 MiB, so it stays aligned to any minimum block size a server may demand
 * (those are powers of two no larger than 64 KiB).
 */
export const MAX_RANGE_REQUEST_LENGTH = 0xfff00000;

/** Option replies and non-data chunks are small; anything bigger is a broken or hostile peer. */
export const MAX_OPTION_REPLY_LENGTH = 64 * 1024 * 1024;
export const MAX_CHUNK_PAYLOAD_LENGTH = 64 * 1024 * 1024;
/** Strings (export names, error messages, context names) are capped by the spec. */
export const MAX_STRING_LENGTH = 4096;

// ---- what our server accepts from its clients ------------------------------------------------

/** Option data longer than this is a hostile or broken client: answered NBD_REP_ERR_TOO_BIG,
 *  then the connection is closed (the largest real option, a meta context query list, is a few
 *  kilobytes). */
export const SERVER_MAX_OPTION_LENGTH = 64 * 1024;
/** The maximum payload the server advertises (NBD_INFO_BLOCK_SIZE) and serves in one read. */
export const SERVER_MAX_PAYLOAD = 32 * 1024 * 1024;
/** Descriptors in one block status chunk at most (the spec asks for no more than 2^20). */
export const SERVER_MAX_EXTENTS = 1 << 20;
/** Options one connection may send before it must choose an export. */
export const SERVER_MAX_OPTIONS = 256;

/** The one meta context the server offers. */
export const BASE_ALLOCATION = 'base:allocation';
