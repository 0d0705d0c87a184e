"""Build hook: `LLMUX_BUILD_FROM_SOURCE=1 pip install ./bindings/python` also
builds libllmux with CMake from this repository and puts libllmux.so inside the
package (the wheel is then platform-specific). Without the variable, the package
is pure Python and finds the library at run time (LLMUX_LIB_PATH or the system).

Everything else is declared in pyproject.toml.
"""

import glob
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _from_source():
    return os.environ.get("LLMUX_BUILD_FROM_SOURCE", "").lower() not in ("", "0", "false", "no")


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        if not _from_source():
            return
        if not os.path.exists(os.path.join(REPO, "CMakeLists.txt")):
            raise SystemExit("LLMUX_BUILD_FROM_SOURCE: no CMakeLists.txt at %s (build from "
                             "a checkout of the llmux repository)" % REPO)
        build_temp = self.get_finalized_command("build").build_temp
        build_dir = os.environ.get("LLMUX_CMAKE_BUILD_DIR") or os.path.join(
            os.path.abspath(build_temp), "llmux-cmake")
        subprocess.check_call([
            "cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
            "-DLLMUX_BUILD_TESTS=OFF", "-DLLMUX_BUILD_EXAMPLES=OFF", "-DLLMUX_BUILD_SIM=OFF"])
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "llmux",
                               "-j", str(os.cpu_count() or 2)])
        target = os.path.join(self.build_lib, "llmux")
        libs = [p for p in glob.glob(os.path.join(build_dir, "lib", "libllmux.so*"))
                + glob.glob(os.path.join(build_dir, "lib", "libllmux*.dylib"))
                if not os.path.islink(p)]
        if not libs:
            raise SystemExit("LLMUX_BUILD_FROM_SOURCE: cmake built no libllmux in %s" % build_dir)
        # Copy the real file under the plain name the loader looks for.
        suffix = ".dylib" if libs[0].endswith(".dylib") else ".so"
        shutil.copyfile(libs[0], os.path.join(target, "libllmux" + suffix))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return _from_source()


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution)
