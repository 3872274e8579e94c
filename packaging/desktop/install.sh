#!/bin/sh
# Install the built desktop bundle (subtone-desktop.spec) with its menu entry and icons.
#
#   packaging/desktop/install.sh [BUNDLE] [PREFIX]
#
# BUNDLE: the built folder (default build/desktop/dist/subtone-desktop). PREFIX: ~/.local for
# yourself (the default), /usr/local for everyone (as root). It puts the app in PREFIX/lib/,
# a link PREFIX/bin/subtone-desktop, the .desktop file in PREFIX/share/applications/ (naming the
# app by its full path, so the menu finds it whatever PATH says) and the icons in
# PREFIX/share/icons/hicolor/. Safe to run again; to remove it, delete those four.
set -eu

bundle=${1:-build/desktop/dist/subtone-desktop}
prefix=${2:-$HOME/.local}
name=subtone-desktop
app_dir=$prefix/lib/$name

if [ ! -x "$bundle/$name" ] || [ ! -d "$bundle/share" ]; then
  echo "install.sh: no built bundle in $bundle (build it with packaging/desktop/subtone-desktop.spec)" >&2
  exit 1
fi
case $app_dir in
  *[[:space:]]*) echo "install.sh: PREFIX must not contain spaces (.desktop Exec)" >&2; exit 1 ;;
esac

mkdir -p "$prefix/lib" "$prefix/bin" "$prefix/share/applications" "$prefix/share/icons"
rm -rf "$app_dir"
cp -R "$bundle" "$app_dir"
ln -sfn "$app_dir/$name" "$prefix/bin/$name"
sed -e "s|^Exec=$name|Exec=$app_dir/$name|" -e "s|^TryExec=$name|TryExec=$app_dir/$name|" \
  "$bundle/share/applications/$name.desktop" >"$prefix/share/applications/$name.desktop"
cp -R "$bundle/share/icons/." "$prefix/share/icons/"

# Refresh the menu and icon caches where the desktop keeps them (absent tools are fine).
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q "$prefix/share/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$prefix/share/icons/hicolor/index.theme" ]; then
  gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
fi
echo "installed $name in $app_dir ($prefix/bin/$name)"
