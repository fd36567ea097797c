/*
 * acl-check.exe: who may open a file, read from its DACL (a test tool of
 * scripts/windows-e2e.sh, never shipped).
 *
 *   acl-check.exe SDDL [--open] PATH...
 *     SDDL    the DACL secret files are created with (kf-secret-file's
 *             WINDOWS_SDDL), for the probe below
 *     --open  the PATHs must NOT be owner-only (a negative control)
 *
 * First a probe: a file created next to the first PATH with SDDL (as the
 * station creates secret files) is read back. When the DACL comes back as
 * written, this system keeps exact DACLs ("exact DACL") and every owner-only
 * PATH must carry exactly that DACL. Otherwise ("DACL from mode") the
 * system derives the DACL from something else: Debian's Wine 8.0 keeps only
 * Unix mode bits and rebuilds a DACL from them (server/file.c, sd_to_mode on
 * create, mode_to_sd on query: SYSTEM always, the owner for the user bits,
 * Everyone for the "other" bits, the group bits not at all); then a PATH is
 * owner-only when its DACL grants nothing to anyone but its owner, SYSTEM,
 * Administrators and OWNER RIGHTS, and the caller checks the group bits.
 *
 * One line per PATH: "owner-only" or "open", the rule used, the DACL in SDDL.
 * Exit status: 0 when every PATH is as expected, 1 otherwise, 2 on usage or
 * probe errors. Written from Microsoft's Win32 documentation
 * (GetNamedSecurityInfoW, ACL/ACE layout, SDDL).
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

static const char *utf8(const wchar_t *w)
{
    static char buf[4][2048];
    static int next;
    char *out = buf[next++ % 4];
    if (!WideCharToMultiByte(CP_UTF8, 0, w, -1, out, sizeof(buf[0]), NULL, NULL)) strcpy(out, "?");
    return out;
}

/* The DACL of `path` (owner, DACL, control), or FALSE with a message. */
struct acl_info {
    PSECURITY_DESCRIPTOR sd;
    PSID owner;
    PACL dacl;
    SECURITY_DESCRIPTOR_CONTROL control;
};

static BOOL read_acl(const wchar_t *path, struct acl_info *info)
{
    DWORD revision, err;
    memset(info, 0, sizeof(*info));
    err = GetNamedSecurityInfoW(path, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                &info->owner, NULL, &info->dacl, NULL, &info->sd);
    if (err != ERROR_SUCCESS) {
        fprintf(stderr, "acl-check: %s: GetNamedSecurityInfoW failed (error %lu)\n", utf8(path), (unsigned long)err);
        return FALSE;
    }
    GetSecurityDescriptorControl(info->sd, &info->control, &revision);
    return TRUE;
}

static const char *sddl_of(PSECURITY_DESCRIPTOR sd)
{
    static char out[2048];
    LPWSTR text = NULL;
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text,
                                                              NULL))
        return "(no SDDL)";
    snprintf(out, sizeof(out), "%s", utf8(text));
    LocalFree(text);
    return out;
}

/* Same DACL: same protection flag, same ACEs in the same order. */
static BOOL same_dacl(const PACL a, SECURITY_DESCRIPTOR_CONTROL ca, const PACL b, SECURITY_DESCRIPTOR_CONTROL cb)
{
    if (!a || !b) return a == b;
    if ((ca & SE_DACL_PROTECTED) != (cb & SE_DACL_PROTECTED)) return FALSE;
    if (a->AceCount != b->AceCount) return FALSE;
    for (WORD i = 0; i < a->AceCount; i++) {
        ACE_HEADER *x, *y;
        if (!GetAce(a, i, (void **)&x) || !GetAce(b, i, (void **)&y)) return FALSE;
        if (x->AceSize != y->AceSize || memcmp(x, y, x->AceSize) != 0) return FALSE;
    }
    return TRUE;
}

static BOOL is_sid(PSID sid, WELL_KNOWN_SID_TYPE type)
{
    BYTE buf[SECURITY_MAX_SID_SIZE];
    DWORD size = sizeof(buf);
    return CreateWellKnownSid(type, NULL, buf, &size) && EqualSid(sid, buf);
}

/* Whether the DACL grants anything to anyone but the owner, OWNER RIGHTS,
 * SYSTEM and Administrators; names the first such grantee in `who`. */
static BOOL owner_only(const struct acl_info *info, char *who, size_t who_len)
{
    if (!info->dacl) {
        snprintf(who, who_len, "no DACL: everyone");
        return FALSE;
    }
    for (WORD i = 0; i < info->dacl->AceCount; i++) {
        ACE_HEADER *ace;
        PSID sid;
        LPWSTR text = NULL;
        if (!GetAce(info->dacl, i, (void **)&ace)) return FALSE;
        if (ace->AceFlags & INHERIT_ONLY_ACE) continue;       /* does not apply to the file */
        if (ace->AceType == ACCESS_DENIED_ACE_TYPE) continue; /* grants nothing */
        if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE) {
            snprintf(who, who_len, "ACE type %u", ace->AceType);
            return FALSE;
        }
        sid = (PSID)&((ACCESS_ALLOWED_ACE *)ace)->SidStart;
        if ((info->owner && EqualSid(sid, info->owner)) || is_sid(sid, WinCreatorOwnerRightsSid) ||
            is_sid(sid, WinLocalSystemSid) || is_sid(sid, WinBuiltinAdministratorsSid))
            continue;
        ConvertSidToStringSidW(sid, &text);
        snprintf(who, who_len, "%s", text ? utf8(text) : "?");
        if (text) LocalFree(text);
        return FALSE;
    }
    return TRUE;
}

/* Creates a file next to `beside` with `sddl` and tells whether its DACL
 * reads back unchanged. Returns -1 on error. */
static int probe(const wchar_t *beside, const wchar_t *sddl, struct acl_info *wanted)
{
    wchar_t path[MAX_PATH + 64];
    const wchar_t *slash = wcsrchr(beside, L'\\');
    size_t dir_len = slash ? (size_t)(slash - beside + 1) : 0;
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, FALSE};
    struct acl_info got;
    HANDLE h;
    DWORD revision;
    BOOL present, defaulted;
    int kept;

    if (dir_len > MAX_PATH) return -1;
    wmemcpy(path, beside, dir_len);
    swprintf(path + dir_len, 64, L"acl-check-probe-%lu.tmp", (unsigned long)GetCurrentProcessId());
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sa.lpSecurityDescriptor,
                                                              NULL)) {
        fprintf(stderr, "acl-check: bad SDDL %s\n", utf8(sddl));
        return -1;
    }
    memset(wanted, 0, sizeof(*wanted));
    wanted->sd = sa.lpSecurityDescriptor;
    GetSecurityDescriptorControl(wanted->sd, &wanted->control, &revision);
    GetSecurityDescriptorDacl(wanted->sd, &present, &wanted->dacl, &defaulted);
    h = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, &sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "acl-check: cannot create the probe %s (error %lu)\n", utf8(path),
                (unsigned long)GetLastError());
        return -1;
    }
    CloseHandle(h);
    if (!read_acl(path, &got)) {
        DeleteFileW(path);
        return -1;
    }
    kept = same_dacl(got.dacl, got.control, wanted->dacl, wanted->control);
    printf("probe: created with %s, read back %s: %s\n", utf8(sddl), sddl_of(got.sd),
           kept ? "exact DACL kept" : "DACL not kept as written (derived from the mode bits)");
    LocalFree(got.sd);
    DeleteFileW(path);
    return kept;
}

int wmain(int argc, wchar_t **argv)
{
    struct acl_info wanted;
    BOOL expect_open = FALSE;
    int first = 2, bad = 0, exact;

    if (argc >= 3 && wcscmp(argv[2], L"--open") == 0) {
        expect_open = TRUE;
        first = 3;
    }
    if (argc <= first) {
        fprintf(stderr, "usage: acl-check.exe SDDL [--open] PATH...\n");
        return 2;
    }
    exact = probe(argv[first], argv[1], &wanted);
    if (exact < 0) return 2;
    for (int i = first; i < argc; i++) {
        struct acl_info info;
        char who[256] = "";
        BOOL ok_owner;
        const char *rule;
        if (!read_acl(argv[i], &info)) {
            bad++;
            continue;
        }
        if (exact) {
            ok_owner = same_dacl(info.dacl, info.control, wanted.dacl, wanted.control);
            /* owner_only names a grantee too many; else the DACL just differs */
            if (!ok_owner && owner_only(&info, who, sizeof(who)))
                snprintf(who, sizeof(who), "not the secret-file DACL");
            rule = "exact DACL";
        } else {
            ok_owner = owner_only(&info, who, sizeof(who));
            rule = "DACL from mode";
        }
        printf("%-10s %-14s %s  %s%s%s\n", ok_owner ? "owner-only" : "open", rule, utf8(argv[i]), sddl_of(info.sd),
               who[0] ? "  also: " : "", who);
        if (ok_owner == expect_open) bad++;
        LocalFree(info.sd);
    }
    LocalFree(wanted.sd);
    if (bad) {
        printf("acl-check: %d of %d files not %s\n", bad, argc - first, expect_open ? "open" : "owner-only");
        return 1;
    }
    printf("acl-check: %d files %s (%s)\n", argc - first, expect_open ? "open" : "owner-only",
           exact ? "exact DACL" : "DACL from mode");
    return 0;
}
