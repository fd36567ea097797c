/*
 * console-event.exe: delivers a console control event to a running process
 * the way Windows itself does, for scripts/windows-e2e.sh (a test tool,
 * never shipped).
 *
 *   console-event.exe IMAGE EVENT
 *     IMAGE  image name of the target (e.g. kf-station.exe); exactly one
 *            running process must have it
 *     EVENT  ctrl-c | ctrl-break | close | logoff | shutdown
 *
 * Windows delivers a console event by starting a thread in the target
 * process at kernelbase!CtrlRoutine with the event code as the thread
 * parameter; CtrlRoutine calls the process's HandlerRoutines
 * (SetConsoleCtrlHandler). This tool does the same with CreateRemoteThread.
 * The routine's address is ours rebased onto the target's kernelbase.dll
 * (a module snapshot of the target), so it also holds if the DLL were
 * mapped elsewhere there. The tool waits for that thread (at most 15 s),
 * which for close/logoff/shutdown lasts until the target's handler lets
 * it go, and prints the thread's exit code.
 *
 * Why not GenerateConsoleCtrlEvent: it sends to a console process group,
 * only CTRL_C/CTRL_BREAK, and Wine 8.0 refuses CTRL_BREAK (server/console.c,
 * propagate_console_signal); Wine turns SIGINT into CTRL_C only.
 *
 * Exit status: 0 when the thread was started and ended, 1 otherwise.
 * Written from Microsoft's Win32 documentation (CreateToolhelp32Snapshot,
 * CreateRemoteThread, HandlerRoutine).
 */
#include <windows.h>
#include <tlhelp32.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    DWORD code;
} events[] = {
    {"ctrl-c", CTRL_C_EVENT},
    {"ctrl-break", CTRL_BREAK_EVENT},
    {"close", CTRL_CLOSE_EVENT},
    {"logoff", CTRL_LOGOFF_EVENT},
    {"shutdown", CTRL_SHUTDOWN_EVENT},
};

static int fail(const char *what)
{
    fprintf(stderr, "console-event: %s (error %lu)\n", what, (unsigned long)GetLastError());
    return 1;
}

/* The one process whose image is `image`; 0 when none or several. */
static DWORD find_process(const char *image)
{
    DWORD found = 0, count = 0;
    PROCESSENTRY32 entry;
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (snap == INVALID_HANDLE_VALUE) return 0;
    entry.dwSize = sizeof(entry);
    for (BOOL more = Process32First(snap, &entry); more; more = Process32Next(snap, &entry)) {
        if (_stricmp(entry.szExeFile, image) == 0 && entry.th32ProcessID != GetCurrentProcessId()) {
            found = entry.th32ProcessID;
            count++;
        }
    }
    CloseHandle(snap);
    if (count != 1) {
        fprintf(stderr, "console-event: %lu processes named %s\n", (unsigned long)count, image);
        return 0;
    }
    return found;
}

/* Base address of `module` in process `pid`, or NULL. */
static BYTE *module_base(DWORD pid, const char *module)
{
    BYTE *base = NULL;
    MODULEENTRY32 entry;
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPMODULE, pid);
    if (snap == INVALID_HANDLE_VALUE) return NULL;
    entry.dwSize = sizeof(entry);
    for (BOOL more = Module32First(snap, &entry); more; more = Module32Next(snap, &entry)) {
        if (_stricmp(entry.szModule, module) == 0) {
            base = entry.modBaseAddr;
            break;
        }
    }
    CloseHandle(snap);
    return base;
}

int main(int argc, char **argv)
{
    DWORD code = ~0u, pid, waited, thread_exit = 0;
    HMODULE local;
    FARPROC routine;
    BYTE *remote_base;
    LPTHREAD_START_ROUTINE remote_routine;
    HANDLE process, thread;
    size_t i;

    if (argc != 3) {
        fprintf(stderr, "usage: console-event.exe IMAGE ctrl-c|ctrl-break|close|logoff|shutdown\n");
        return 2;
    }
    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(argv[2], events[i].name) == 0) code = events[i].code;
    if (code == ~0u) {
        fprintf(stderr, "console-event: unknown event %s\n", argv[2]);
        return 2;
    }
    if (!(pid = find_process(argv[1]))) return 1;

    if (!(local = GetModuleHandleA("kernelbase.dll"))) return fail("no kernelbase.dll here");
    if (!(routine = GetProcAddress(local, "CtrlRoutine"))) return fail("kernelbase.dll exports no CtrlRoutine");
    if (!(remote_base = module_base(pid, "kernelbase.dll"))) return fail("no kernelbase.dll in the target");
    remote_routine = (LPTHREAD_START_ROUTINE)(void *)(remote_base + ((BYTE *)(void *)routine - (BYTE *)local));

    process = OpenProcess(PROCESS_CREATE_THREAD | PROCESS_QUERY_INFORMATION | PROCESS_VM_OPERATION |
                              PROCESS_VM_READ | PROCESS_VM_WRITE | SYNCHRONIZE,
                          FALSE, pid);
    if (!process) return fail("OpenProcess failed");
    thread = CreateRemoteThread(process, NULL, 0, remote_routine, (LPVOID)(ULONG_PTR)code, 0, NULL);
    if (!thread) return fail("CreateRemoteThread failed");
    printf("console-event: %s (%lu) sent to %s, pid %lu, CtrlRoutine at %p (kernelbase at %p there, %p here)\n",
           argv[2], (unsigned long)code, argv[1], (unsigned long)pid, (void *)remote_routine,
           (void *)remote_base, (void *)local);
    waited = WaitForSingleObject(thread, 15000);
    if (waited != WAIT_OBJECT_0) return fail("the CtrlRoutine thread did not end within 15 s");
    GetExitCodeThread(thread, &thread_exit);
    printf("console-event: CtrlRoutine thread ended, exit code %lu\n", (unsigned long)thread_exit);
    CloseHandle(thread);
    CloseHandle(process);
    fflush(stdout);
    return 0;
}
