/*
 * Test tool, never shipped: the one bcryptprimitives.dll function the Rust
 * standard library (1.78 and later) imports on Windows, ProcessPrng, which
 * Debian 12's Wine 8.0 does not have. Fills the buffer from the Linux kernel's
 * getrandom(2). Microsoft documents ProcessPrng as always returning TRUE; here
 * a failing draw returns FALSE, which the Rust standard library treats as fatal.
 */
#include <errno.h>
#include <sys/random.h>

#include <windef.h>

BOOL WINAPI br_ProcessPrng(BYTE *buf, SIZE_T len)
{
    while (len > 0)
    {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0)
        {
            if (errno == EINTR) continue;
            return FALSE;
        }
        buf += n;
        len -= (SIZE_T)n;
    }
    return TRUE;
}
