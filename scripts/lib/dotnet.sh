# Sourced by the scripts. Why: MSBuild nodes and the compiler server outlive a build and keep the caller's
# stdout open, so a pipe (CI's, or `| tail`) would wait minutes for them to time out.
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0 UseSharedCompilation=false
