/*
 * Test tool: checks the WinSCard bridge through the calls the station does not
 * make itself (W variants, SCARD_AUTOALLOCATE, the PnP notification reader,
 * receive PCI, Reconnect, GetAttrib). A Windows program (mingw); run under
 * Wine by scripts/windows-e2e.sh with a virtual fob in the reader.
 *
 * Usage: bridge-check.exe READER UID_HEX   (exit 0 when every check passes)
 */
#include <windows.h>
#include <scarderr.h>
#include <winscard.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

static int failures;
static int checks;

static void check(int ok, const char *what, LONG rv)
{
    checks++;
    if (!ok)
    {
        failures++;
        printf("bridge-check: FAIL %s (0x%08lX)\n", what, (unsigned long)rv);
    }
}

/* Is `name` one of the strings of the multi-string `list` (wide)? */
static int in_multi_w(const WCHAR *list, const WCHAR *name)
{
    for (; *list; list += wcslen(list) + 1)
        if (!wcscmp(list, name)) return 1;
    return 0;
}

static int in_multi_a(const char *list, const char *name)
{
    for (; *list; list += strlen(list) + 1)
        if (!strcmp(list, name)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    WCHAR wreader[256], *wlist = NULL, *wname = NULL;
    char alist[1024], uid_hex[64];
    BYTE *atr = NULL, *attr = NULL, resp[64];
    SCARD_READERSTATEW wstate;
    SCARD_READERSTATEA pnp;
    SCARD_IO_REQUEST recv_pci;
    DWORD n, len, state, proto, active, resp_len, i;
    LONG rv;

    if (argc != 3)
    {
        printf("usage: bridge-check READER UID_HEX\n");
        return 2;
    }
    MultiByteToWideChar(CP_UTF8, 0, argv[1], -1, wreader, 256);

    rv = SCardEstablishContext(SCARD_SCOPE_USER, NULL, NULL, &ctx);
    check(rv == SCARD_S_SUCCESS, "SCardEstablishContext", rv);
    if (rv != SCARD_S_SUCCESS) return 1;
    rv = SCardIsValidContext(ctx);
    check(rv == SCARD_S_SUCCESS, "SCardIsValidContext", rv);

    /* Reader list: W with SCARD_AUTOALLOCATE, A with a length query first. */
    n = SCARD_AUTOALLOCATE;
    rv = SCardListReadersW(ctx, NULL, (WCHAR *)&wlist, &n);
    check(rv == SCARD_S_SUCCESS && wlist && in_multi_w(wlist, wreader), "SCardListReadersW autoallocate", rv);
    if (wlist) SCardFreeMemory(ctx, wlist);
    len = 0;
    rv = SCardListReadersA(ctx, NULL, NULL, &len);
    check(rv == SCARD_S_SUCCESS && len > 0 && len <= sizeof(alist), "SCardListReadersA length", rv);
    n = 1;
    rv = SCardListReadersA(ctx, NULL, alist, &n);
    check(rv == (LONG)SCARD_E_INSUFFICIENT_BUFFER && n == len, "SCardListReadersA too small", rv);
    n = sizeof(alist);
    rv = SCardListReadersA(ctx, NULL, alist, &n);
    check(rv == SCARD_S_SUCCESS && n == len && in_multi_a(alist, argv[1]), "SCardListReadersA", rv);

    /* Card state through the W variant. */
    memset(&wstate, 0, sizeof(wstate));
    wstate.szReader = wreader;
    wstate.dwCurrentState = SCARD_STATE_UNAWARE;
    rv = SCardGetStatusChangeW(ctx, 0, &wstate, 1);
    check(rv == SCARD_S_SUCCESS && (wstate.dwEventState & SCARD_STATE_PRESENT) && wstate.cbAtr > 2
              && wstate.rgbAtr[0] == 0x3B,
          "SCardGetStatusChangeW present + ATR", rv);

    /* The PnP pseudo reader: accepted, and no reader change within 200 ms. */
    memset(&pnp, 0, sizeof(pnp));
    pnp.szReader = "\\\\?PnP?\\Notification";
    pnp.dwCurrentState = SCARD_STATE_UNAWARE;
    rv = SCardGetStatusChangeA(ctx, 0, &pnp, 1);
    check(rv == SCARD_S_SUCCESS || rv == (LONG)SCARD_E_TIMEOUT, "PnP notification (first call)", rv);
    pnp.dwCurrentState = pnp.dwEventState & ~SCARD_STATE_CHANGED;
    rv = SCardGetStatusChangeA(ctx, 200, &pnp, 1);
    check(rv == (LONG)SCARD_E_TIMEOUT, "PnP notification: no change -> SCARD_E_TIMEOUT", rv);

    /* Connect (W), status (W, autoallocated name and ATR). */
    rv = SCardConnectW(ctx, wreader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &active);
    check(rv == SCARD_S_SUCCESS && (active == SCARD_PROTOCOL_T0 || active == SCARD_PROTOCOL_T1), "SCardConnectW",
          rv);
    if (rv != SCARD_S_SUCCESS) return 1;
    n = SCARD_AUTOALLOCATE;
    len = SCARD_AUTOALLOCATE;
    rv = SCardStatusW(card, (WCHAR *)&wname, &n, &state, &proto, (BYTE *)&atr, &len);
    /* pcsc-lite reports a powered card ready for protocol selection; on
       Windows that is the ordinal SCARD_NEGOTIABLE (5) or SCARD_SPECIFIC (6). */
    check(rv == SCARD_S_SUCCESS && wname && !wcscmp(wname, wreader)
              && (state == SCARD_NEGOTIABLE || state == SCARD_SPECIFIC) && proto == active
              && atr && len == wstate.cbAtr && !memcmp(atr, wstate.rgbAtr, len),
          "SCardStatusW (name, ordinal state, protocol, ATR)", rv);

    /* The ATR attribute: the ATR, or (vpcd's driver does not answer it) the
       Windows code of SCARD_E_UNSUPPORTED_FEATURE, not pcsc-lite's 0x8010001F. */
    n = SCARD_AUTOALLOCATE;
    rv = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING, (BYTE *)&attr, &n);
    check((rv == SCARD_S_SUCCESS && attr && atr && n == len && !memcmp(attr, atr, n))
              || rv == (LONG)SCARD_E_UNSUPPORTED_FEATURE,
          "SCardGetAttrib ATR", rv);
    if (attr) SCardFreeMemory(ctx, attr);
    if (wname) SCardFreeMemory(ctx, wname);
    if (atr) SCardFreeMemory(ctx, atr);

    /* GET DATA UID inside a transaction, with a receive PCI. */
    rv = SCardBeginTransaction(card);
    check(rv == SCARD_S_SUCCESS, "SCardBeginTransaction", rv);
    {
        static const BYTE get_uid[] = { 0xFF, 0xCA, 0x00, 0x00, 0x00 };
        const SCARD_IO_REQUEST *pci = active == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
        recv_pci.dwProtocol = active;
        recv_pci.cbPciLength = sizeof(recv_pci);
        resp_len = sizeof(resp);
        rv = SCardTransmit(card, pci, get_uid, sizeof(get_uid), &recv_pci, resp, &resp_len);
    }
    for (i = 0; i + 2 < resp_len && i < 30; i++) sprintf(uid_hex + 2 * i, "%02X", resp[i]);
    uid_hex[resp_len >= 2 ? 2 * (resp_len - 2) : 0] = 0;
    check(rv == SCARD_S_SUCCESS && resp_len >= 2 && resp[resp_len - 2] == 0x90 && resp[resp_len - 1] == 0x00
              && !_stricmp(uid_hex, argv[2]) && recv_pci.cbPciLength == sizeof(recv_pci),
          "SCardTransmit GET DATA UID", rv);
    rv = SCardEndTransaction(card, SCARD_LEAVE_CARD);
    check(rv == SCARD_S_SUCCESS, "SCardEndTransaction", rv);

    rv = SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD, &proto);
    check(rv == SCARD_S_SUCCESS && proto == active, "SCardReconnect", rv);
    rv = SCardDisconnect(card, SCARD_LEAVE_CARD);
    check(rv == SCARD_S_SUCCESS, "SCardDisconnect", rv);
    rv = SCardCancel(ctx);
    check(rv == SCARD_S_SUCCESS, "SCardCancel", rv);
    rv = SCardReleaseContext(ctx);
    check(rv == SCARD_S_SUCCESS, "SCardReleaseContext", rv);
    rv = SCardIsValidContext(ctx);
    check(rv != SCARD_S_SUCCESS, "SCardIsValidContext after release", rv);

    printf("bridge-check: %d/%d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}
