/*
 * Test tool, never shipped: a winscard.dll for Wine that forwards the WinSCard
 * API to pcsc-lite (libpcsclite.so.1), so that the Windows build of the station
 * talks to a real pcscd (with the vpcd virtual reader) when it runs under Wine.
 * Debian 12's Wine 8.0 ships a winscard.dll whose calls all fail.
 *
 * It is a Winelib module (built by winegcc as an ELF .dll.so): the exported
 * functions use the Windows x64 calling convention (WINAPI) and the Windows
 * types; inside, they call pcsc-lite with the Linux types. Written from the
 * public API documentation of both sides (Microsoft's SCard* reference and
 * pcsc-lite's winscard.h / pcsclite.h). The differences it bridges:
 *
 *   - DWORD and LONG are 32-bit on Windows, `unsigned long` / `long` (64-bit)
 *     in pcsc-lite on Linux x86_64;
 *   - SCARD_READERSTATE: 3 x DWORD + rgbAtr[36] on Windows, 3 x unsigned long
 *     + rgbAtr[33] in pcsc-lite (every array is copied field by field);
 *   - SCARD_IO_REQUEST: 2 x DWORD (8 bytes) vs 2 x unsigned long (16 bytes);
 *   - SCARD_PROTOCOL_RAW: 0x00010000 on Windows, 0x4 in pcsc-lite;
 *   - the card state from SCardStatus: an ordinal on Windows (SCARD_ABSENT = 1
 *     ... SCARD_SPECIFIC = 6), a bit mask in pcsc-lite;
 *   - SCARD_CTL_CODE(n): 0x00310000 | n << 2 on Windows, 0x42000000 + n in
 *     pcsc-lite;
 *   - SCARD_E_UNSUPPORTED_FEATURE: 0x80100022 on Windows, 0x8010001F in
 *     pcsc-lite (every other SCARD_* code has the same value on both sides);
 *   - the W (UTF-16) variants: names are converted to and from UTF-8, which
 *     pcsc-lite uses; the A variants pass the bytes through (reader names are
 *     ASCII in practice);
 *   - SCARD_AUTOALLOCATE ((DWORD)-1 as the buffer length): the bridge
 *     allocates on the process heap and SCardFreeMemory frees it.
 *
 * The "\\?PnP?\Notification" pseudo reader of SCardGetStatusChange is handled
 * by pcsc-lite itself, with the same meaning as on Windows.
 *
 * Set KF_WINSCARD_TRACE=1 to log every call and its result on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <pthread.h>

#include <windef.h>
#include <winbase.h>
#include <winnls.h>

/* pcsc-lite's ABI on Linux x86_64. */
typedef long px_long;
typedef unsigned long px_dword;
typedef long px_handle;
#define PX_MAX_ATR 33
typedef struct
{
    const char *reader;
    void *user_data;
    px_dword current_state;
    px_dword event_state;
    px_dword atr_len;
    unsigned char atr[PX_MAX_ATR];
} px_readerstate;
typedef struct
{
    px_dword protocol;
    px_dword pci_len;
} px_io_request;

/* The Windows side (DWORD is 32-bit, rgbAtr has 36 bytes). */
typedef ULONG_PTR win_handle;
#define WIN_ATR_BUFFER 36
typedef struct
{
    const char *reader;
    void *user_data;
    DWORD current_state;
    DWORD event_state;
    DWORD atr_len;
    BYTE atr[WIN_ATR_BUFFER];
} win_readerstate_a;
typedef struct
{
    const WCHAR *reader;
    void *user_data;
    DWORD current_state;
    DWORD event_state;
    DWORD atr_len;
    BYTE atr[WIN_ATR_BUFFER];
} win_readerstate_w;
typedef struct
{
    DWORD protocol;
    DWORD pci_len;
} win_io_request;

#define W_SUCCESS 0
#define W_INTERNAL_ERROR ((LONG)0x80100001)
#define W_INVALID_PARAMETER ((LONG)0x80100004)
#define W_NO_MEMORY ((LONG)0x80100006)
#define W_INSUFFICIENT_BUFFER ((LONG)0x80100008)
#define W_NO_SERVICE ((LONG)0x8010001D)
#define W_UNSUPPORTED_FEATURE ((LONG)0x80100022)
#define PX_UNSUPPORTED_FEATURE 0x8010001FUL
#define PX_INSUFFICIENT_BUFFER 0x80100008UL
#define W_AUTOALLOCATE ((DWORD)-1)
#define W_PROTOCOL_RAW 0x00010000u
#define PX_PROTOCOL_RAW 0x4u
#define T0_T1_T15 (0x1u | 0x2u | 0x8u)

/* Protocol control information exported as data, as winscard.dll does. */
win_io_request br_T0Pci = { 0x1, sizeof(win_io_request) };
win_io_request br_T1Pci = { 0x2, sizeof(win_io_request) };
win_io_request br_RawPci = { W_PROTOCOL_RAW, sizeof(win_io_request) };

static struct
{
    px_long (*establish)(px_dword, const void *, const void *, px_handle *);
    px_long (*release)(px_handle);
    px_long (*is_valid)(px_handle);
    px_long (*cancel)(px_handle);
    px_long (*list_readers)(px_handle, const char *, char *, px_dword *);
    px_long (*get_status_change)(px_handle, px_dword, px_readerstate *, px_dword);
    px_long (*connect)(px_handle, const char *, px_dword, px_dword, px_handle *, px_dword *);
    px_long (*reconnect)(px_handle, px_dword, px_dword, px_dword, px_dword *);
    px_long (*disconnect)(px_handle, px_dword);
    px_long (*begin_transaction)(px_handle);
    px_long (*end_transaction)(px_handle, px_dword);
    px_long (*status)(px_handle, char *, px_dword *, px_dword *, px_dword *, unsigned char *, px_dword *);
    px_long (*transmit)(px_handle, const px_io_request *, const unsigned char *, px_dword, px_io_request *,
                        unsigned char *, px_dword *);
    px_long (*control)(px_handle, px_dword, const void *, px_dword, void *, px_dword, px_dword *);
    px_long (*get_attrib)(px_handle, px_dword, unsigned char *, px_dword *);
    px_long (*set_attrib)(px_handle, px_dword, const unsigned char *, px_dword);
} px;
static pthread_once_t px_once = PTHREAD_ONCE_INIT;
static int px_loaded;

static int tracing(void)
{
    static int on = -1;
    if (on < 0)
    {
        const char *v = getenv("KF_WINSCARD_TRACE");
        on = v && *v && strcmp(v, "0") != 0;
    }
    return on;
}
#define TRACE(...) do { if (tracing()) fprintf(stderr, "winscard-bridge: " __VA_ARGS__); } while (0)

static void px_load(void)
{
    void *lib = dlopen("libpcsclite.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
    {
        fprintf(stderr, "winscard-bridge: cannot load libpcsclite.so.1: %s\n", dlerror());
        return;
    }
#define SYM(field, name) \
    if (!(*(void **)&px.field = dlsym(lib, name))) \
    { \
        fprintf(stderr, "winscard-bridge: libpcsclite.so.1 lacks %s\n", name); \
        return; \
    }
    SYM(establish, "SCardEstablishContext")
    SYM(release, "SCardReleaseContext")
    SYM(is_valid, "SCardIsValidContext")
    SYM(cancel, "SCardCancel")
    SYM(list_readers, "SCardListReaders")
    SYM(get_status_change, "SCardGetStatusChange")
    SYM(connect, "SCardConnect")
    SYM(reconnect, "SCardReconnect")
    SYM(disconnect, "SCardDisconnect")
    SYM(begin_transaction, "SCardBeginTransaction")
    SYM(end_transaction, "SCardEndTransaction")
    SYM(status, "SCardStatus")
    SYM(transmit, "SCardTransmit")
    SYM(control, "SCardControl")
    SYM(get_attrib, "SCardGetAttrib")
    SYM(set_attrib, "SCardSetAttrib")
#undef SYM
    px_loaded = 1;
}

static int ready(void)
{
    pthread_once(&px_once, px_load);
    return px_loaded;
}

/* pcsc-lite result (a 64-bit long holding a 32-bit code) to the Windows code. */
static LONG win_rv(const char *fn, px_long rv)
{
    unsigned long code = (unsigned long)rv & 0xFFFFFFFFUL;
    if (code == PX_UNSUPPORTED_FEATURE) code = (unsigned long)(DWORD)W_UNSUPPORTED_FEATURE;
    TRACE("%s -> 0x%08lX\n", fn, code);
    return (LONG)(DWORD)code;
}

static px_dword px_protocols(DWORD p)
{
    px_dword r = p & T0_T1_T15;
    if (p & W_PROTOCOL_RAW) r |= PX_PROTOCOL_RAW;
    return r;
}

static DWORD win_protocols(px_dword p)
{
    DWORD r = (DWORD)(p & T0_T1_T15);
    if (p & PX_PROTOCOL_RAW) r |= W_PROTOCOL_RAW;
    return r;
}

/* pcsc-lite's card-state bit mask to the Windows ordinal (highest state wins). */
static DWORD win_card_state(px_dword s)
{
    static const px_dword bits[] = { 0x40, 0x20, 0x10, 0x08, 0x04, 0x02 };
    static const DWORD ordinal[] = { 6, 5, 4, 3, 2, 1 };
    size_t i;
    for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
        if (s & bits[i]) return ordinal[i];
    return 0; /* SCARD_UNKNOWN */
}

static DWORD px_control_code(DWORD code)
{
    if ((code & 0xFFFF0003u) == 0x00310000u) return 0x42000000u + ((code >> 2) & 0x3FFFu);
    return code;
}

/*
 * Hands `len` units of `src` (each `unit` bytes) to a Windows caller that
 * passed `buf` and `*plen` (in units): length query, copy, too small, or
 * SCARD_AUTOALLOCATE (then `buf` is really a pointer to the result pointer).
 */
static LONG deliver(const void *src, DWORD len, size_t unit, void *buf, DWORD *plen)
{
    if (*plen == W_AUTOALLOCATE)
    {
        void *mem;
        if (!buf) return W_INVALID_PARAMETER;
        mem = HeapAlloc(GetProcessHeap(), 0, (SIZE_T)len * unit + 1);
        if (!mem) return W_NO_MEMORY;
        memcpy(mem, src, (size_t)len * unit);
        *(void **)buf = mem;
        *plen = len;
        return W_SUCCESS;
    }
    if (!buf)
    {
        *plen = len;
        return W_SUCCESS;
    }
    if (*plen < len)
    {
        *plen = len;
        return W_INSUFFICIENT_BUFFER;
    }
    memcpy(buf, src, (size_t)len * unit);
    *plen = len;
    return W_SUCCESS;
}

/* UTF-8 (pcsc-lite) bytes, embedded NULs included, to UTF-16 for a W caller. */
static LONG deliver_wide(const char *src, DWORD len, WCHAR *buf, DWORD *plen)
{
    int n = len ? MultiByteToWideChar(CP_UTF8, 0, src, (int)len, NULL, 0) : 0;
    WCHAR *wide;
    LONG rv;
    if (len && n <= 0) return W_INTERNAL_ERROR;
    wide = malloc(((size_t)n + 1) * sizeof(WCHAR));
    if (!wide) return W_NO_MEMORY;
    if (len) MultiByteToWideChar(CP_UTF8, 0, src, (int)len, wide, n);
    rv = deliver(wide, (DWORD)n, sizeof(WCHAR), buf, plen);
    free(wide);
    return rv;
}

/* A NUL-terminated UTF-16 string to a malloc'd UTF-8 string (NULL stays NULL). */
static int to_utf8(const WCHAR *w, char **out)
{
    int n;
    *out = NULL;
    if (!w) return 1;
    n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0 || !(*out = malloc((size_t)n))) return 0;
    WideCharToMultiByte(CP_UTF8, 0, w, -1, *out, n, NULL, NULL);
    return 1;
}

LONG WINAPI br_EstablishContext(DWORD scope, const void *r1, const void *r2, win_handle *ctx)
{
    px_handle h = 0;
    px_long rv;
    (void)r1;
    (void)r2;
    if (!ctx) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    rv = px.establish(scope, NULL, NULL, &h);
    if (rv == 0) *ctx = (win_handle)h;
    return win_rv("SCardEstablishContext", rv);
}

LONG WINAPI br_ReleaseContext(win_handle ctx)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardReleaseContext", px.release((px_handle)ctx));
}

LONG WINAPI br_IsValidContext(win_handle ctx)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardIsValidContext", px.is_valid((px_handle)ctx));
}

LONG WINAPI br_Cancel(win_handle ctx)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardCancel", px.cancel((px_handle)ctx));
}

/* The reader multi-string from pcsc-lite, malloc'd, with its length in bytes. */
static px_long list_readers(win_handle ctx, const char *groups, char **out, DWORD *len)
{
    int attempt;
    *out = NULL;
    for (attempt = 0; attempt < 5; attempt++)
    {
        px_dword n = 0;
        char *buf;
        px_long rv = px.list_readers((px_handle)ctx, groups, NULL, &n);
        if (rv != 0) return rv;
        if (!(buf = malloc(n ? n : 1))) return (px_long)(DWORD)W_NO_MEMORY;
        rv = px.list_readers((px_handle)ctx, groups, buf, &n);
        if (rv == 0)
        {
            *out = buf;
            *len = (DWORD)n;
            return 0;
        }
        free(buf);
        /* A reader came between the two calls: ask again. */
        if (((unsigned long)rv & 0xFFFFFFFFUL) != PX_INSUFFICIENT_BUFFER) return rv;
    }
    return (px_long)(DWORD)W_INSUFFICIENT_BUFFER;
}

LONG WINAPI br_ListReadersA(win_handle ctx, const char *groups, char *buf, DWORD *plen)
{
    char *list;
    DWORD len;
    px_long rv;
    if (!plen) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    rv = list_readers(ctx, groups, &list, &len);
    if (rv != 0) return win_rv("SCardListReadersA", rv);
    rv = deliver(list, len, 1, buf, plen);
    free(list);
    return win_rv("SCardListReadersA", rv);
}

LONG WINAPI br_ListReadersW(win_handle ctx, const WCHAR *groups, WCHAR *buf, DWORD *plen)
{
    char *list, *groups8;
    DWORD len;
    px_long rv;
    if (!plen) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    if (!to_utf8(groups, &groups8)) return W_NO_MEMORY;
    rv = list_readers(ctx, groups8, &list, &len);
    free(groups8);
    if (rv != 0) return win_rv("SCardListReadersW", rv);
    rv = deliver_wide(list, len, buf, plen);
    free(list);
    return win_rv("SCardListReadersW", rv);
}

/*
 * SCardGetStatusChange on an array of pcsc-lite reader states built from the
 * caller's; event states and ATRs are copied back. `names` holds the reader
 * names pcsc-lite sees (the A names themselves, or UTF-8 copies of W names).
 */
static px_long get_status_change(win_handle ctx, DWORD timeout, const char **names, void **user_data,
                                 DWORD *current, DWORD *event, DWORD *atr_len, BYTE (*atr)[WIN_ATR_BUFFER],
                                 size_t stride, DWORD count)
{
    px_readerstate *states = calloc(count ? count : 1, sizeof(*states));
    px_long rv;
    DWORD i;
    if (!states) return (px_long)(DWORD)W_NO_MEMORY;
#define AT(ptr, i) ((void *)((char *)(ptr) + (size_t)(i) * stride))
    for (i = 0; i < count; i++)
    {
        DWORD n = *(DWORD *)AT(atr_len, i);
        states[i].reader = names[i];
        states[i].user_data = *(void **)AT(user_data, i);
        states[i].current_state = *(DWORD *)AT(current, i);
        states[i].atr_len = n > PX_MAX_ATR ? PX_MAX_ATR : n;
        memcpy(states[i].atr, AT(atr, i), states[i].atr_len);
    }
    rv = px.get_status_change((px_handle)ctx, timeout, states, count);
    for (i = 0; i < count; i++)
    {
        px_dword n = states[i].atr_len > PX_MAX_ATR ? PX_MAX_ATR : states[i].atr_len;
        *(DWORD *)AT(event, i) = (DWORD)states[i].event_state;
        *(DWORD *)AT(atr_len, i) = (DWORD)n;
        memcpy(AT(atr, i), states[i].atr, n);
    }
#undef AT
    free(states);
    return rv;
}

LONG WINAPI br_GetStatusChangeA(win_handle ctx, DWORD timeout, win_readerstate_a *rs, DWORD count)
{
    const char **names;
    px_long rv;
    DWORD i;
    if (count && !rs) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    if (!(names = calloc(count ? count : 1, sizeof(*names)))) return W_NO_MEMORY;
    for (i = 0; i < count; i++) names[i] = rs[i].reader;
    rv = get_status_change(ctx, timeout, names, &rs->user_data, &rs->current_state, &rs->event_state,
                           &rs->atr_len, &rs->atr, sizeof(*rs), count);
    free(names);
    return win_rv("SCardGetStatusChangeA", rv);
}

LONG WINAPI br_GetStatusChangeW(win_handle ctx, DWORD timeout, win_readerstate_w *rs, DWORD count)
{
    char **names;
    px_long rv = 0;
    DWORD i, done = 0;
    if (count && !rs) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    if (!(names = calloc(count ? count : 1, sizeof(*names)))) return W_NO_MEMORY;
    for (; done < count; done++)
        if (!to_utf8(rs[done].reader, &names[done])) break;
    if (done == count)
        rv = get_status_change(ctx, timeout, (const char **)names, &rs->user_data, &rs->current_state,
                               &rs->event_state, &rs->atr_len, &rs->atr, sizeof(*rs), count);
    else
        rv = (px_long)(DWORD)W_NO_MEMORY;
    for (i = 0; i < done; i++) free(names[i]);
    free(names);
    return win_rv("SCardGetStatusChangeW", rv);
}

static px_long connect_reader(win_handle ctx, const char *reader, DWORD share, DWORD preferred, win_handle *card,
                              DWORD *active)
{
    px_handle h = 0;
    px_dword proto = 0;
    px_long rv = px.connect((px_handle)ctx, reader, share, px_protocols(preferred), &h, &proto);
    if (rv == 0)
    {
        *card = (win_handle)h;
        if (active) *active = win_protocols(proto);
    }
    TRACE("SCardConnect(%s)\n", reader ? reader : "(null)");
    return rv;
}

LONG WINAPI br_ConnectA(win_handle ctx, const char *reader, DWORD share, DWORD preferred, win_handle *card,
                        DWORD *active)
{
    if (!card) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardConnectA", connect_reader(ctx, reader, share, preferred, card, active));
}

LONG WINAPI br_ConnectW(win_handle ctx, const WCHAR *reader, DWORD share, DWORD preferred, win_handle *card,
                        DWORD *active)
{
    char *reader8;
    px_long rv;
    if (!card) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    if (!to_utf8(reader, &reader8)) return W_NO_MEMORY;
    rv = connect_reader(ctx, reader8, share, preferred, card, active);
    free(reader8);
    return win_rv("SCardConnectW", rv);
}

LONG WINAPI br_Reconnect(win_handle card, DWORD share, DWORD preferred, DWORD init, DWORD *active)
{
    px_dword proto = 0;
    px_long rv;
    if (!ready()) return W_NO_SERVICE;
    rv = px.reconnect((px_handle)card, share, px_protocols(preferred), init, &proto);
    if (rv == 0 && active) *active = win_protocols(proto);
    return win_rv("SCardReconnect", rv);
}

LONG WINAPI br_Disconnect(win_handle card, DWORD disposition)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardDisconnect", px.disconnect((px_handle)card, disposition));
}

LONG WINAPI br_BeginTransaction(win_handle card)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardBeginTransaction", px.begin_transaction((px_handle)card));
}

LONG WINAPI br_EndTransaction(win_handle card, DWORD disposition)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardEndTransaction", px.end_transaction((px_handle)card, disposition));
}

/* SCardStatus for both variants: `wide` selects UTF-16 reader names. */
static LONG status(win_handle card, int wide, void *name, DWORD *name_len, DWORD *state, DWORD *protocol,
                   BYTE *atr, DWORD *atr_len)
{
    char reader[1024];
    unsigned char card_atr[PX_MAX_ATR];
    px_dword reader_len = sizeof(reader), st = 0, proto = 0, n = sizeof(card_atr);
    px_long rv;
    LONG out = W_SUCCESS;
    if (!ready()) return W_NO_SERVICE;
    rv = px.status((px_handle)card, reader, &reader_len, &st, &proto, card_atr, &n);
    if (rv != 0) return win_rv("SCardStatus", rv);
    if (state) *state = win_card_state(st);
    if (protocol) *protocol = win_protocols(proto);
    if (name_len)
        out = wide ? deliver_wide(reader, (DWORD)reader_len, name, name_len)
                   : deliver(reader, (DWORD)reader_len, 1, name, name_len);
    if (out == W_SUCCESS && atr_len) out = deliver(card_atr, (DWORD)n, 1, atr, atr_len);
    return win_rv("SCardStatus", (px_long)(DWORD)out);
}

LONG WINAPI br_StatusA(win_handle card, char *name, DWORD *name_len, DWORD *state, DWORD *protocol, BYTE *atr,
                       DWORD *atr_len)
{
    return status(card, 0, name, name_len, state, protocol, atr, atr_len);
}

LONG WINAPI br_StatusW(win_handle card, WCHAR *name, DWORD *name_len, DWORD *state, DWORD *protocol, BYTE *atr,
                       DWORD *atr_len)
{
    return status(card, 1, name, name_len, state, protocol, atr, atr_len);
}

LONG WINAPI br_Transmit(win_handle card, const win_io_request *send_pci, const BYTE *send, DWORD send_len,
                        win_io_request *recv_pci, BYTE *recv, DWORD *recv_len)
{
    px_io_request px_send, px_recv;
    px_dword n;
    px_long rv;
    if (!send_pci || !recv_len) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    px_send.protocol = px_protocols(send_pci->protocol);
    px_send.pci_len = sizeof(px_send);
    px_recv.protocol = recv_pci ? px_protocols(recv_pci->protocol) : 0;
    px_recv.pci_len = sizeof(px_recv);
    n = *recv_len;
    rv = px.transmit((px_handle)card, &px_send, send, send_len, recv_pci ? &px_recv : NULL, recv, &n);
    *recv_len = (DWORD)n;
    if (rv == 0 && recv_pci)
    {
        recv_pci->protocol = win_protocols(px_recv.protocol);
        recv_pci->pci_len = sizeof(*recv_pci);
    }
    return win_rv("SCardTransmit", rv);
}

LONG WINAPI br_Control(win_handle card, DWORD code, const void *in, DWORD in_len, void *out, DWORD out_len,
                       DWORD *returned)
{
    px_dword n = 0;
    px_long rv;
    if (!ready()) return W_NO_SERVICE;
    rv = px.control((px_handle)card, px_control_code(code), in, in_len, out, out_len, &n);
    if (returned) *returned = (DWORD)n;
    return win_rv("SCardControl", rv);
}

LONG WINAPI br_GetAttrib(win_handle card, DWORD id, BYTE *buf, DWORD *plen)
{
    px_dword n = 0;
    unsigned char *tmp;
    px_long rv;
    LONG out;
    if (!plen) return W_INVALID_PARAMETER;
    if (!ready()) return W_NO_SERVICE;
    rv = px.get_attrib((px_handle)card, id, NULL, &n);
    if (rv != 0) return win_rv("SCardGetAttrib", rv);
    if (!(tmp = malloc(n ? n : 1))) return W_NO_MEMORY;
    rv = px.get_attrib((px_handle)card, id, tmp, &n);
    out = rv == 0 ? deliver(tmp, (DWORD)n, 1, buf, plen) : win_rv("SCardGetAttrib", rv);
    free(tmp);
    return rv == 0 ? win_rv("SCardGetAttrib", (px_long)(DWORD)out) : out;
}

LONG WINAPI br_SetAttrib(win_handle card, DWORD id, const BYTE *buf, DWORD len)
{
    if (!ready()) return W_NO_SERVICE;
    return win_rv("SCardSetAttrib", px.set_attrib((px_handle)card, id, buf, len));
}

/* Frees what this bridge allocated for SCARD_AUTOALLOCATE. */
LONG WINAPI br_FreeMemory(win_handle ctx, void *mem)
{
    (void)ctx;
    if (mem) HeapFree(GetProcessHeap(), 0, mem);
    return W_SUCCESS;
}
