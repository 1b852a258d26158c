# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that everything under plugin_utils is **PRIVATE** to this collection: its modules, classes and functions can
# change in any release, without a deprecation and without a new major version. Do not import them from other
# collections, playbooks' own plugins or standalone code; use the modules and roles (docs/development.md).
