//! Every shipped rule on an excerpt in its log's real line format, written
//! for these tests: the line must be taken by that rule (not an earlier,
//! more generic or noise one), with the class and codes the rule promises.
//! A rule without an excerpt here fails `every_rule_has_an_excerpt`.

use casebot_analysis::logs::LogKind;
use casebot_analysis::rules::{Role, RuleSet};
use casebot_analysis::scan;

use super::repo;

fn rules() -> RuleSet {
    RuleSet::load(&repo().join("rules")).unwrap_or_else(|e| panic!("{e}"))
}

const T: &str = "2023-03-17 17:03:35";
const WU_NEW: &str = "2023/03/17 17:03:37.1234567 1234  5678";
const WU_OLD: &str = "2016-01-08\t10:15:32:123\t 952\t1a4c";

/// (rule id, kind, text). `{T}` is a CBS/DISM/setup time stamp.
fn excerpts() -> Vec<(&'static str, LogKind, String)> {
    let cbs = |level: &str, comp: &str, msg: &str| format!("{T}, {level:<21} {comp:<6} {msg}");
    vec![
        (
            "cbs.session-start",
            LogKind::Cbs,
            cbs("Info", "CBS", "TI: --- Initializing Trusted Installer ---"),
        ),
        (
            "dism.session-start",
            LogKind::Dism,
            cbs(
                "Info",
                "DISM",
                "DISM.EXE: <----- Starting Dism.exe session ----->",
            ),
        ),
        (
            "cbs.install-success",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Exec: Processing complete.  Session: 31012345_123456789, Package: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8 [HRESULT = 0x00000000 - S_OK]",
            ),
        ),
        (
            "cbs.package-installed",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Package: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8 is already in the correct state, current: Installed",
            ),
        ),
        (
            "wu.install-success",
            LogKind::WindowsUpdate,
            format!(
                "{WU_OLD}\tReport\tCWERReporter finished handling 1 events. Installation Successful: Windows successfully installed the following update: 2023-01 Cumulative Update (KB5022286)"
            ),
        ),
        (
            "sfc.no-violations",
            LogKind::Sfc,
            "Windows Resource Protection did not find any integrity violations.".into(),
        ),
        (
            "dism.operation-success",
            LogKind::Dism,
            "The restore operation completed successfully.".into(),
        ),
        (
            "cbs.servicing-stack-version",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                r"Loaded Servicing Stack v10.0.17763.3880 with Core: C:\Windows\winsxs\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.17763.3880_none_1a2b3c4d5e6f7a8b\cbscore.dll",
            ),
        ),
        (
            "noise.sqm",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                r"SQM: Failed to start upload with file pattern: C:\Windows\servicing\sqm\*_std.sqm, flags: 0x2 [HRESULT = 0x80004005 - E_FAIL]",
            ),
        ),
        (
            "noise.wer-flag",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Not able to query DisableWerReporting flag.  Assuming not set... [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]",
            ),
        ),
        (
            "noise.restore-point",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Failed setting restore point [HRESULT = 0x80070422 - ERROR_SERVICE_DISABLED]",
            ),
        ),
        (
            "noise.cbstemp-move",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                r"Failed to move \\?\C:\Windows\CbsTemp\31012345_123456789\ to \\?\C:\Windows\CbsTemp\{1a2b}\ [HRESULT = 0x80070020 - ERROR_SHARING_VIOLATION]",
            ),
        ),
        (
            "noise.manifest-parser",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Expecting attribute name [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]",
            ),
        ),
        (
            "noise.finalisation-status",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Execute time performance datapoint is invalid. [HRESULT = 0x80070490 - ERROR_NOT_FOUND]",
            ),
        ),
        (
            "noise.sfc-static-file",
            LogKind::Cbs,
            cbs(
                "Info",
                "CSI",
                r#"00000321 [SR] Cannot repair member file [l:9]"img11.jpg" of Microsoft-Windows-Shell-Wallpaper-Common, version 10.0.17763.1, arch amd64, nonSxS, pkt {l:8 b:31bf3856ad364e35} in the store, hash mismatch"#,
            ),
        ),
        (
            "noise.wu-self-update-exit",
            LogKind::WindowsUpdate,
            format!("{WU_OLD}\tService\tService exit [Exit code = 0x240001]"),
        ),
        (
            "noise.session-file-logging",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Could not get active session for current session file logging [HRESULT = 0x80004003 - E_POINTER]",
            ),
        ),
        (
            "cbs.csi-cannot-delete",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "00000031 (F) STATUS_CANNOT_DELETE #1234567# from Windows::Rtl::SystemImplementation::CDirectory::DeleteExistingFile(...)[gle=0xd0000121]",
            ),
        ),
        (
            "cbs.csi-operation-cannot-delete",
            LogKind::Cbs,
            cbs(
                "Info",
                "CSI",
                r"00000033 Error STATUS_CANNOT_DELETE while executing operation HardLinkFile on [l:120]'\SystemRoot\WinSxS\amd64_microsoft-windows-example.resources_31bf3856ad364e35_10.0.17763.3650_en-us_0123456789abcdef\example.dll.mui'",
            ),
        ),
        (
            "cbs.csi-sharing-violation",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "00000041 (F) STATUS_SHARING_VIOLATION #765432# from Windows::Rtl::SystemImplementation::CFile::OpenFile(...)[gle=0xd0000043]",
            ),
        ),
        (
            "cbs.csi-access-denied",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "00000052 (F) STATUS_ACCESS_DENIED #112233# from Windows::Rtl::SystemImplementation::DirectFileSystemProvider::SysCreateFile(...)[gle=0xd0000022]",
            ),
        ),
        (
            "cbs.hash-mismatch",
            LogKind::Cbs,
            cbs(
                "Info",
                "CSI",
                r#"00000061 Hashes for file member [l:10]"dxdiag.exe" do not match."#,
            ),
        ),
        (
            "cbs.payload-corrupt",
            LogKind::Cbs,
            cbs(
                "Info",
                "CSI",
                r"00000071 (p)	CSI Payload Corrupt	(n)	amd64_microsoft-windows-directx-dxdiag_31bf3856ad364e35_10.0.17763.1_none_0123456789abcdef\dxdiag.exe",
            ),
        ),
        (
            "cbs.manifest-missing",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Store corruption, manifest missing for package: Package_123_for_KB3192392~31bf3856ad364e35~amd64~~6.3.1.4",
            ),
        ),
        (
            "cbs.mark-store-corrupt",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Mark store corruption flag because of package: Package_123_for_KB3192392~31bf3856ad364e35~amd64~~6.3.1.4. [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]",
            ),
        ),
        (
            "cbs.pin-deployment",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Failed to pin deployment while resolving Update: Package_77_for_KB5022286~31bf3856ad364e35~amd64~en-GB~10.0.1.8.5022286-101_neutral from file: (null) [HRESULT = 0x80073701 - ERROR_SXS_ASSEMBLY_MISSING]",
            ),
        ),
        (
            "cbs.advanced-installer-failed",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "00000d5f (F) Failed execution of queue item Installer: Generic Command ({1a2b3c4d-0000-0000-0000-000000000000}) with HRESULT HRESULT_FROM_WIN32(1).  Failure will not be ignored: A rollback will be initiated after all the operations in the installer queue are completed; installer is reliable[gle=0x80004005]",
            ),
        ),
        (
            "cbs.advanced-installers-flag",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Setting ExecuteState key to: CbsExecuteStateFlagAdvancedInstallersFailed",
            ),
        ),
        (
            "cbs.ssu-required",
            LogKind::Cbs,
            cbs(
                "Error",
                "CBS",
                "Package_for_RollupFix requires Servicing Stack v10.0.14393.5285 but current Servicing Stack is v10.0.14393.4349. [HRESULT = 0x800f0823 - CBS_E_NEW_SERVICING_STACK_REQUIRED]",
            ),
        ),
        (
            "cbs.driver-operation-failed",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                r"Doqe: Recording result: 0x800b0109, for Inf: oem12.inf",
            ),
        ),
        (
            "cbs.driver-queue-failed",
            LogKind::Cbs,
            cbs(
                "Error",
                "CBS",
                "Startup: Error occurred processing the driver operations queue [HRESULT = 0x8007000d - ERROR_INVALID_DATA]",
            ),
        ),
        (
            "cbs.reserved-partition-full",
            LogKind::Cbs,
            cbs(
                "Error",
                "CBS",
                "Failed to update the EFI system partition: not enough free space [HRESULT = 0x80070070 - ERROR_DISK_FULL]",
            ),
        ),
        (
            "cbs.trustedinstaller-not-running",
            LogKind::Cbs,
            cbs(
                "Error",
                "CBS",
                "The Windows Modules Installer service is disabled and cannot start.",
            ),
        ),
        (
            "cbs.pending-transaction",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Pending transaction content must be resolved before a new operation [HRESULT = 0x80070bc9 - ERROR_FAIL_REBOOT_REQUIRED]",
            ),
        ),
        (
            "cbs.security-software-block",
            LogKind::Dism,
            cbs(
                "Error",
                "DISM",
                "DISM Manager: PID=4321 TID=1234 Failed to create the DISM host process dismhost.exe - CDISMManager::CreateImageSessionFromLocation(hr:0x80070005)",
            ),
        ),
        (
            "cbs.csi-fatal-relay",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "0000002e (F) E_FAIL #5583959# from Windows::ServicingAPI::CCSITransaction::ICSITransaction2_AddFiles(Flags = 1, disp = 0, op = 0)[gle=0x80004005]",
            ),
        ),
        (
            "cbs.csi-fatal",
            LogKind::Cbs,
            cbs(
                "Error",
                "CSI",
                "00000091 (F) STATUS_OBJECT_NAME_NOT_FOUND #998877# from Windows::Rtl::SystemImplementation::DirectFileSystemProvider::SysCreateFile(...)[gle=0xd0000034]",
            ),
        ),
        (
            "cbs.add-to-transaction",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Failed to add to transaction package: Package_1_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]",
            ),
        ),
        (
            "cbs.final-failure",
            LogKind::Cbs,
            cbs(
                "Error",
                "CBS",
                "Failed to process single phase execution. [HRESULT = 0x800f0985 - PSFX_E_APPLY_REVERSE_DELTA_FAILED]",
            ),
        ),
        (
            "cbs.processing-complete-failed",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Exec: Processing complete.  Session: 31012345_123456789, Package: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.3887.1.7 [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
            ),
        ),
        (
            "cbs.wer-failure-report",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "WER: Generating failure report for package: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.3887.1.7, status: 0x800f0922, failure source: Execute, start state: Staged, target state: Installed, client id: UpdateAgentLCU",
            ),
        ),
        (
            "dism.source-missing",
            LogKind::Dism,
            cbs(
                "Error",
                "DISM",
                "DISM DISM Package Manager: PID=4321 TID=1234 Failed to restore the image health. - CPackageManagerCLIHandler::Private_ProcessFailedToRestoreHealth(hr:0x800f081f)",
            ),
        ),
        (
            "dism.store-corrupt",
            LogKind::Dism,
            "The component store is repairable.".into(),
        ),
        (
            "dism.command-failed",
            LogKind::Dism,
            cbs(
                "Error",
                "DISM",
                "DISM.EXE: DISM Manager processed the command line but failed. HRESULT=800F081F",
            ),
        ),
        (
            "wu.install-failure",
            LogKind::WindowsUpdate,
            format!(
                "{WU_OLD}\tReport\tREPORT EVENT: {{...}}\t193 [AGENT_INSTALLING_FAILED]\tFailure\tContent Install\tInstallation Failure: Windows failed to install the following update with error 0x800f0922: 2023-01 Cumulative Update (KB5022286)."
            ),
        ),
        (
            "wu.cbs-called-error",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} Handler         CBS called Error with 0x800f0985,"),
        ),
        (
            "wu.end-failed",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} Agent           * END * Installing updates, exit code = 0x80240022"),
        ),
        (
            "wu.fatal",
            LogKind::WindowsUpdate,
            format!("{WU_OLD}\tAgent\tFATAL: failed to load the datastore"),
        ),
        (
            "setup.rollback",
            LogKind::Setup,
            cbs(
                "Error",
                "SP",
                "Operation failed with 0xC1900101 - 0x4000D: the installation failed in the SECOND_BOOT phase",
            ),
        ),
        (
            "setup.disk-space",
            LogKind::Setup,
            cbs(
                "Error",
                "MOUPG",
                "CDlpActionImageDeploy::ExecuteRoutine(1016): Result = 0xC190020E, not enough free disk space",
            ),
        ),
        (
            "setup.operation-failed",
            LogKind::Setup,
            cbs(
                "Error",
                "SP",
                "Operation failed: Apply the OS image. Error: 0x80070005",
            ),
        ),
        (
            "sfc.unable-to-fix",
            LogKind::Sfc,
            "Windows Resource Protection found corrupt files but was unable to fix some of them."
                .into(),
        ),
        (
            "sfc.could-not-run",
            LogKind::Sfc,
            "Windows Resource Protection could not start the repair service.".into(),
        ),
        (
            "sfc.cannot-repair-member",
            LogKind::Cbs,
            cbs(
                "Info",
                "CSI",
                r#"00000322 [SR] Cannot repair member file [l:10]"ntdll.dll" of Microsoft-Windows-ntdll, version 10.0.17763.3887, arch amd64, nonSxS, pkt {l:8 b:31bf3856ad364e35} in the store, hash mismatch"#,
            ),
        ),
        (
            "generic.failed-hresult",
            LogKind::Cbs,
            cbs(
                "Info",
                "CBS",
                "Failed to get the session status [HRESULT = 0x8007ffff - Unknown Error]",
            ),
        ),
        (
            "generic.error-code",
            LogKind::Text,
            "安装更新时报错 0x8024ffff，无法继续。".into(),
        ),
        // Excerpts below are lines of tests/corpus/logs (real public logs).
        (
            "noise.open-package-invalid",
            LogKind::Cbs,
            cbs("Info", "CBS", "Failed to OpenPackage using worker session [HRESULT = 0x800f0805]"),
        ),
        (
            "noise.backup-log-cab",
            LogKind::Cbs,
            cbs("Info", "CBS", "Failed to create backup log cab. [HRESULT = 0x80070001 - ERROR_INVALID_FUNCTION]"),
        ),
        (
            "noise.hang-detect-restart",
            LogKind::Cbs,
            cbs("Info", "CBS", "Failed restart attempt. [HRESULT = 0x8007045b - ]"),
        ),
        (
            "noise.repaired-payload",
            LogKind::Cbs,
            cbs("Info", "CBS", "(p)\tCSI Payload Corrupt\t(w)\t(Fixed)\tamd64_windows-defender-management-powershell_31bf3856ad364e35_10.0.18362.1_none_b620cb061e8a941c\\Defender.psd1"),
        ),
        (
            "noise.setup-cleanup-missing-folder",
            LogKind::Dism,
            format!("{T}, Info                         CSetupFilesCleanup::CleanVolume - Return status: 80070003"),
        ),
        (
            "noise.wu-startup-failed",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} Agent           *FAILED* [80240013] Method failed [CAgentServiceManager::CreateServiceObjectAndAddIntoMap:2034]"),
        ),
        (
            "cbs.ai-summary",
            LogKind::Cbs,
            cbs("Error", "CSI", "00000057 (F) Installer: Network Drivers\tBinary Name: NetSetupAI.dll\tErrorCode: 800106d9\tPhase: 31\tMode: Delta\tComponent: NONE[gle=0x80004005]"),
        ),
        (
            "cbs.driver-queue",
            LogKind::Cbs,
            cbs("Error", "CBS", "Doqi: Failed loading driver operations queue. [HRESULT = 0x80070490 - ERROR_NOT_FOUND]"),
        ),
        (
            "cbs.hang-timeout",
            LogKind::Cbs,
            cbs("Info", "CBS", "Shtd: Timed out waiting for shutdown processing to complete - no progress detected in last 900000 milliseconds"),
        ),
        (
            "cbs.checksur-item",
            LogKind::Text,
            "(f)\tCBS MUM Missing\t0x00000002\t".into(),
        ),
        (
            "cbs.repair-source-missing",
            LogKind::Cbs,
            cbs("Info", "CBS", "Failed to repair store. [HRESULT = 0x800f081f - CBS_E_SOURCE_MISSING]"),
        ),
        (
            "cbs.repair-complete",
            LogKind::Cbs,
            cbs("Info", "CBS", "All CSI corruption was fixed, ensure CorruptionDetectedDuringAcr is clear"),
        ),
        (
            "dism.console-source-missing",
            LogKind::Text,
            "Ошибка: 0x800f081f".into(),
        ),
        (
            "wu.download-failed",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} DownloadManager BITS job {{5E92E4F4-AD99-4DDC-9200-3662198BC31C}} failed, updateId = E3766677-6547-4EC8-9097-4C7E37190DDA.1, hr = 0x8020002B. File URL = http://example.com/f"),
        ),
        (
            "wu.history-failure",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} Agent           LogHistory called.   idUpdate={{E0F87EBF-B414-4AC7-A225-8FE802CF8618}}.1, resultMapped=80070643,   resultUnMapped=FFFE |"),
        ),
        (
            "wu.update-title",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} Agent             Title = The new Microsoft Edge for Windows 10 Version 1809 for x64-based Systems (KB4584642)"),
        ),
        (
            "wu.call-succeeded",
            LogKind::WindowsUpdate,
            format!("{WU_NEW} ComApi          Install call complete (succeeded = 1, succeeded with errors = 0, failed = 0, cancelled = 0, unaccounted = 0"),
        ),
        // Event log records as `events` renders them; the WindowsUpdateClient
        // 19 and 20 lines are records of the public evtx sample System.evtx.
        (
            "event.wu-install-success",
            LogKind::EventLog,
            "2017-07-20 08:36:23, Info EVENT System Microsoft-Windows-WindowsUpdateClient 19: updateTitle=2017-07 Security Update for Adobe Flash Player for Windows 10 Version 1703 for x64-based Systems (KB4025376); updateGuid={9ebe5d13-4966-4cdb-a612-9780df621411}; updateRevisionNumber=201".into(),
        ),
        (
            "event.wu-install-failure",
            LogKind::EventLog,
            "2017-07-23 07:25:41, Error EVENT System Microsoft-Windows-WindowsUpdateClient 20: errorCode=0x80248007; updateTitle=2017-07 Cumulative Update for Windows 10 Version 1703 for x64-based Systems (KB4025342); updateRevisionNumber=201".into(),
        ),
        (
            "event.wu-download-failure",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Error EVENT System Microsoft-Windows-WindowsUpdateClient 31: errorCode=0x80072ee2; updateTitle=2023-03 Cumulative Update for Windows 10 (KB5023696)".into(),
        ),
        (
            "event.wu-scan-failure",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Error EVENT System Microsoft-Windows-WindowsUpdateClient 25: errorCode=0x8024401c".into(),
        ),
        (
            "event.wu-cannot-connect",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Warning EVENT System Microsoft-Windows-WindowsUpdateClient 16: errorCode=0x80072efd".into(),
        ),
        (
            "event.wu-started",
            LogKind::EventLog,
            "2017-07-20 08:35:38, Info EVENT System Microsoft-Windows-WindowsUpdateClient 43: updateTitle=2017-07 Cumulative Update for Windows 10 Version 1703 for x64-based Systems (KB4025342); updateGuid={25acae93-40d4-4e62-814c-efb2f29f1bca}".into(),
        ),
        (
            "event.servicing-success",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Info EVENT Setup Microsoft-Windows-Servicing 2: PackageIdentifier=KB5023696; IntendedPackageState=Installed; ErrorCode=0x0; Client=WindowsUpdateAgent".into(),
        ),
        (
            "event.servicing-not-applicable",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Info EVENT Setup Microsoft-Windows-Servicing 5: PackageIdentifier=KB5023696; Client=WUSA".into(),
        ),
        (
            "event.servicing-failure",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Error EVENT Setup Microsoft-Windows-Servicing 3: PackageIdentifier=KB5023696; IntendedPackageState=Installed; ErrorCode=0x800f0922; Client=WindowsUpdateAgent".into(),
        ),
        (
            "event.servicing-change",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Info EVENT Setup Microsoft-Windows-Servicing 1: PackageIdentifier=KB5023696; InitialPackageState=Absent; IntendedPackageState=Installed; Client=WindowsUpdateAgent".into(),
        ),
        (
            "event.update-service-stopped",
            LogKind::EventLog,
            "2023-03-17 09:03:35, Error EVENT System Service Control Manager 7023: param1=Windows Update; param2=%%1058".into(),
        ),
        (
            "event.text-servicing-failure",
            LogKind::Text,
            "Error\t3/17/2023 9:03:35 AM\tMicrosoft-Windows-Servicing\t3\tNone\tPackage KB5023696 failed to be changed to the Installed state. Status: 0x800f0922.".into(),
        ),
        (
            "event.text-success",
            LogKind::Text,
            "Information\t3/17/2023 9:03:35 AM\tMicrosoft-Windows-Servicing\t2\tNone\tPackage KB5023696 was successfully changed to the Installed state.".into(),
        ),
        (
            "setup.rollback-early-phase",
            LogKind::Text,
            "Error: 0xC1900101 - 0x50016".into(),
        ),
        (
            "setup.compat-block",
            LogKind::Text,
            r#"      <CompatibilityInfo BlockingType="Hard" StatusDetail="WarnUpgrade" Message="Your PC has an app"#.into(),
        ),
        (
            "setup.reserved-partition",
            LogKind::Setup,
            cbs("Error", "MOUPG", "CDlpActionCompat::ExecuteSysReqScan(809): Result = 0xC1900201"),
        ),
        (
            "setup.result-error",
            LogKind::Setup,
            cbs("Error", "MOUPG", "CDlpTask::ExecuteActions(3454): Result = 0x80070032"),
        ),
        (
            "setup.phase-error",
            LogKind::Setup,
            cbs("Info", "MOUPG", "Setup phase change: [SetupPhaseInstall] -> [SetupPhaseError]"),
        ),
        (
            "setup.feature-update-handler",
            LogKind::WindowsUpdate,
            "hh:mm:ss.fffff tt 11736 12104 uhwinsetupsession_cpp458 [Handler] Installer completed. Process return code = 0x80070490, result = 0x80070490, callback pending = False".into(),
        ),
    ]
}

fn first_rule<'r>(
    set: &'r RuleSet,
    kind: LogKind,
    text: &str,
) -> Option<&'r casebot_analysis::rules::Rule> {
    let scan = scan::scan_text(set, "excerpt.log", text, Some(kind), 100);
    scan.findings
        .first()
        .map(|f| set.rule(&f.rule).expect("rule exists"))
        .or_else(|| {
            // Noise is counted, not kept: find which noise rule took it.
            scan.rule_hits.keys().next().and_then(|id| set.rule(id))
        })
}

#[test]
fn each_excerpt_is_taken_by_its_rule() {
    let set = rules();
    let mut wrong = Vec::new();
    for (id, kind, text) in excerpts() {
        match first_rule(&set, kind, &text) {
            Some(rule) if rule.id == id => {}
            Some(rule) => wrong.push(format!("{id}: taken by {} ({})", rule.id, rule.origin)),
            None => wrong.push(format!("{id}: no rule matched {text:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_rule_has_an_excerpt() {
    let set = rules();
    let covered: Vec<&str> = excerpts().iter().map(|(id, _, _)| *id).collect();
    let missing: Vec<&str> = set
        .rules
        .iter()
        .filter(|r| !r.id.starts_with("code."))
        .map(|r| r.id.as_str())
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(missing.is_empty(), "rules without an excerpt: {missing:?}");
}

/// Every code rule on a CBS line carrying the code the way CBS logs it, and
/// every facility-7 code also the way DISM's console prints it (decimal).
#[test]
fn every_code_rule_on_cbs_and_dism_forms() {
    let set = rules();
    let mut wrong = Vec::new();
    for rule in set.rules.iter().filter(|r| r.id.starts_with("code.")) {
        let code = &rule.codes[0];
        let name = set.code_names.get(code).cloned().unwrap_or_default();
        let line = format!(
            "{T}, Info                  CBS    Failed to get the package state: Package_for_KB5022286~31bf3856ad364e35~amd64~~10.0.1.8 [HRESULT = {code} - {name}]"
        );
        let scan = scan::scan_text(&set, "CBS.log", &line, Some(LogKind::Cbs), 10);
        match scan.findings.first() {
            // A more specific rule may take the line first, as long as it
            // concludes the same class.
            Some(f) if f.rule == rule.id || (f.class.is_some() && f.class == rule.class) => {
                assert_eq!(f.codes.first(), Some(code), "{}", rule.id);
                assert_eq!(f.class, rule.class, "{}", rule.id);
            }
            other => wrong.push(format!("{}: {:?}", rule.id, other.map(|f| &f.rule))),
        }
        let value = u32::from_str_radix(code.trim_start_matches("0x"), 16).unwrap();
        if value & 0xffff_0000 == 0x8007_0000 {
            let console = format!("Error: {}\n\nThe operation failed.", value & 0xffff);
            let scan = scan::scan_text(&set, "dism-console.txt", &console, Some(LogKind::Text), 10);
            match scan.findings.first() {
                Some(f) if f.rule == rule.id || (f.class.is_some() && f.class == rule.class) => {
                    assert_eq!(
                        f.codes.first(),
                        Some(code),
                        "{}: {:?}",
                        rule.id,
                        f.code_details
                    );
                    assert_eq!(f.code_details[0].raw, (value & 0xffff).to_string());
                }
                other => wrong.push(format!(
                    "{} (DISM decimal): {:?}",
                    rule.id,
                    other.map(|f| &f.rule)
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every code of SERVICING.md's table has a rule (the table is read in place).
#[test]
fn every_code_of_the_servicing_table_is_known() {
    let table = match std::fs::read_to_string(repo().join("../shared/SERVICING.md")) {
        Ok(t) => t,
        Err(_) => return eprintln!("../shared/SERVICING.md not present: skipped"),
    };
    let set = rules();
    let code = regex::Regex::new(r"^\| (0x[0-9a-fA-F]{8})").unwrap();
    let mut missing = Vec::new();
    for line in table.lines() {
        if let Some(c) = code.captures(line) {
            let c = c[1].to_ascii_lowercase();
            if !set.code_classes.contains_key(&c) && !set.rules.iter().any(|r| r.codes.contains(&c))
            {
                missing.push(c);
            }
        }
    }
    assert!(missing.is_empty(), "codes without a rule: {missing:?}");
}

#[test]
fn every_class_is_concluded_by_some_rule() {
    let set = rules();
    for class in casebot_analysis::CLASSES
        .iter()
        .filter(|c| **c != "unknown")
    {
        assert!(
            set.rules.iter().any(|r| r.class.as_deref() == Some(*class)),
            "no rule concludes {class}"
        );
    }
}

/// The loader refuses a noise rule that names a class (so none of the
/// shipped ones can), and every shipped noise rule is classless.
#[test]
fn noise_rules_never_conclude_a_cause() {
    let set = rules();
    for rule in set.rules.iter().filter(|r| r.role == Role::Noise) {
        assert!(rule.class.is_none(), "{}", rule.id);
    }
    let dir = tempfile::tempdir().unwrap();
    super::copy_dir(&repo().join("rules"), dir.path());
    std::fs::write(
        dir.path().join("21-bad.toml"),
        "[[rule]]\nid = \"noise.bad\"\nrole = \"noise\"\nclass = \"reboot_pending\"\npattern = 'x'\nexplain = { zh = \"x\", en = \"x\" }\n",
    )
    .unwrap();
    let errors = RuleSet::load(dir.path()).unwrap_err().to_string();
    assert!(
        errors.contains("21-bad.toml:4:") && errors.contains("cannot name a root-cause class"),
        "{errors}"
    );
}

#[test]
fn built_in_rules_are_the_shipped_folder() {
    let built_in = RuleSet::embedded().unwrap_or_else(|e| panic!("{e}"));
    let folder = rules();
    let ids = |s: &RuleSet| s.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&built_in), ids(&folder));
}
