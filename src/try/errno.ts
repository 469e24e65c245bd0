/** Linux errno numbers as xen-livepatch prints them ("Error 22: Invalid argument"). */
const NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  8: 'ENOEXEC',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  24: 'EMFILE',
  27: 'EFBIG',
  28: 'ENOSPC',
  34: 'ERANGE',
  38: 'ENOSYS',
  61: 'ENODATA',
  62: 'ETIME',
  75: 'EOVERFLOW',
  95: 'EOPNOTSUPP',
  110: 'ETIMEDOUT',
};

export function errnoName(n: number): string {
  return NAMES[n] ?? `E${n}`;
}
