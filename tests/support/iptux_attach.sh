# iptux_attach.sh - our attach step for iptux_drive.sh's iptux_drive_send_file. Sourced after the driver:
# bash lets this later definition of _idrv_attach_one replace the driver's (../shared/tools is not ours).
#
# Why: the driver types the path into the GTK file chooser's location entry, reads it back and presses
# Return at once. GTK 3 takes a typed location as the chooser's selection only 150 ms after the entry's
# last change (gtkfilechooserwidget.c, LOCATION_CHANGED_TIMEOUT); until then the dialog's "Open" button,
# its default, is insensitive, and Return in the entry does nothing (an insensitive default is not
# activated). The read-back (one AT-SPI call) often ends inside those 150 ms: measured here, Open was still
# insensitive at the read-back in 7 of 30 attaches, and a Return pressed then never took (6 of 6), leaving
# the chooser open with the right path and, a moment later, a sensitive Open ("did not accept").
#
# Here each step is checked before the next, as a person looks before clicking: the entry holds the path,
# no completion popup is open and "Open" is sensitive; then Return; if the dialog is still there, "Open"
# is clicked (AT-SPI); a chooser left open is closed with its "Cancel" button, not a bare Escape.
# IDRV_TRACE=FILE appends one line per attach step (what took, how long the chooser took to settle).

read -r -d '' _LC_CHOOSER_PY <<'PYEOF' || true
import sys, warnings
warnings.filterwarnings('ignore')
import gi
gi.require_version('Atspi', '2.0')
from gi.repository import Atspi as A

def walk(o, depth=0):
    yield o
    if depth > 80:
        return
    for i in range(o.get_child_count()):
        c = o.get_child_at_index(i)
        if c is not None:
            yield from walk(c, depth + 1)

def main():
    # prints "TEXT<TAB>OPEN<TAB>POPUP": the location entry's text, 1 if the Open button is sensitive,
    # 1 if an entry-completion popup (an untitled iptux window) is showing; exit 3 if there is no chooser
    d = A.get_desktop(0)
    chooser, popup = None, 0
    for i in range(d.get_child_count()):
        app = d.get_child_at_index(i)
        if app is None or app.get_name() != 'iptux':
            continue
        for j in range(app.get_child_count()):
            w = app.get_child_at_index(j)
            if w is None:
                continue
            if w.get_name() == 'Choose enclosure files':
                chooser = w
            elif w.get_role() == A.Role.WINDOW and w.get_state_set().contains(A.StateType.SHOWING):
                popup = 1
    if chooser is None:
        return 3
    text, focused_text, sensitive = None, None, 0
    for o in walk(chooser):
        role, st = o.get_role(), o.get_state_set()
        if role == A.Role.TEXT and st.contains(A.StateType.EDITABLE) and st.contains(A.StateType.SINGLE_LINE) \
                and st.contains(A.StateType.SHOWING):
            t = o.get_text(0, -1)
            if st.contains(A.StateType.FOCUSED):
                focused_text = t
            elif text is None:
                text = t
        elif role == A.Role.PUSH_BUTTON and o.get_name() == 'Open':
            sensitive = 1 if st.contains(A.StateType.SENSITIVE) else 0
    t = focused_text if focused_text is not None else (text or '')
    sys.stdout.write('%s\t%d\t%d\n' % (t.replace('\t', ' ').replace('\n', ' '), sensitive, popup))
    return 0

sys.exit(main())
PYEOF

_LC_CHOOSER='^Choose enclosure files$'

_lc_trace() { [ -z "${IDRV_TRACE:-}" ] || echo "$(date +%T.%3N) $*" >>"$IDRV_TRACE"; }

# _lc_state INST : sets _LC_TEXT, _LC_OPEN (1 = Open sensitive), _LC_POPUP (1 = completion popup showing)
_lc_state() {
  local s
  s=$(_idrv_exec "$1" timeout 20 "$IDRV_PYTHON" -c "$_LC_CHOOSER_PY" 2>/dev/null) || return 1
  IFS=$'\t' read -r _LC_TEXT _LC_OPEN _LC_POPUP <<<"$s"
}
_lc_state_str() { echo "entry '${_LC_TEXT:-}', Open $([ "${_LC_OPEN:-0}" = 1 ] && echo sensitive || echo insensitive)$([ "${_LC_POPUP:-0}" = 1 ] && echo ', a completion popup open')"; }

# _lc_settled INST ABS : the entry holds ABS, no completion popup is open, and Open is sensitive
_lc_settled() { _lc_state "$1" && [ "$_LC_TEXT" = "$2" ] && [ "$_LC_OPEN" = 1 ] && [ "$_LC_POPUP" = 0 ]; }

# _lc_close_chooser INST : close a chooser left open (its Cancel button; then Escape), 1 if it stays
_lc_close_chooser() {
  local inst=$1 c try
  for try in 1 2 3; do
    c=$(_idrv_win "$inst" "$_LC_CHOOSER") || return 0
    _idrv_py "$inst" click "$_LC_CHOOSER" Cancel >/dev/null 2>&1 ||
      { _idrv_focus "$inst" "$c" && _idrv_x "$inst" key Escape; } >/dev/null 2>&1 || true
    _idrv_until 3 _idrv_win_gone "$inst" "$_LC_CHOOSER" && return 0
  done
  return 1
}

# _idrv_attach_one INST CHATWIN RE ABSPATH TIMEOUT : one try at attaching ABSPATH; 0 when it is listed
_idrv_attach_one() {
  local inst=$1 w=$2 re=$3 abs=$4 t=$5 c t0 how
  _lc_close_chooser "$inst" || { _idrv_err send_file "a 'Choose enclosure files' dialog stays open"; return 1; }
  _idrv_send_has "$inst" "$re" "$abs" && return 0
  _idrv_until 5 _idrv_focus "$inst" "$w" || { _idrv_err send_file "cannot focus the chat window $w"; return 1; }
  _idrv_x "$inst" key ctrl+s >/dev/null 2>&1 || true
  c=$(_idrv_wait_win "$inst" "$_LC_CHOOSER" "$t") ||
    { _idrv_err send_file "Ctrl+S opened no 'Choose enclosure files' dialog"; return 1; }
  _idrv_until 5 _idrv_focus "$inst" "$c" || { _idrv_err send_file "cannot focus the file chooser"; return 1; }
  _idrv_x "$inst" key ctrl+l >/dev/null 2>&1 || true
  # typing before the location entry is there loses the first keys
  _idrv_until 5 _idrv_loc_ready "$inst" || { _idrv_x "$inst" key ctrl+l >/dev/null 2>&1 || true; _idrv_until 5 _idrv_loc_ready "$inst"; } ||
    { _idrv_err send_file "Ctrl+L showed no location entry in the file chooser"; return 1; }
  printf '%s' "$abs" | _idrv_exec "$inst" timeout 30 xdotool type --delay 20 --file - >/dev/null 2>&1 || true
  t0=$(_idrv_ms)
  if ! _idrv_until 3 _idrv_loc_is "$inst" "$abs"; then   # the typed path did not read back: put it in directly
    _idrv_py "$inst" location "$_LC_CHOOSER" set "$abs" >/dev/null 2>&1 || true
    _idrv_until 3 _idrv_loc_is "$inst" "$abs" || { _idrv_err send_file "cannot put $abs into the location entry"; return 1; }
  fi
  # wait for GTK to take the location as the selection (Open turns sensitive) before pressing Return
  [ -z "${IDRV_TRACE:-}" ] || { _lc_state "$inst"; _lc_trace "attach $(basename "$abs"): when read back: $(_lc_state_str)"; }
  if _idrv_until 10 _lc_settled "$inst" "$abs"; then
    _lc_trace "attach $(basename "$abs"): settled $(( $(_idrv_ms) - t0 )) ms after typing"
    _idrv_focus "$inst" "$c" >/dev/null 2>&1 || true
    _idrv_x "$inst" key Return >/dev/null 2>&1 || true
    how=Return
  else
    _lc_trace "attach $(basename "$abs"): not settled after 10 s: $(_lc_state_str)"
    how=none
  fi
  if [ $how = none ] || ! _idrv_until 5 _idrv_win_gone "$inst" "$_LC_CHOOSER"; then
    # Return did not take (or could not be pressed): click Open if the chooser shows the path and Open is live
    if _lc_settled "$inst" "$abs" || { [ "${_LC_TEXT:-}" = "$abs" ] && [ "${_LC_OPEN:-0}" = 1 ]; }; then
      _lc_trace "attach $(basename "$abs"): $how did not take; clicking Open: $(_lc_state_str)"
      _idrv_py "$inst" click "$_LC_CHOOSER" Open >/dev/null 2>&1 || true
      how=Open
    fi
    if ! _idrv_until 5 _idrv_win_gone "$inst" "$_LC_CHOOSER"; then
      local st="no state"; _lc_state "$inst" && st=$(_lc_state_str)
      _lc_close_chooser "$inst" || true
      _idrv_err send_file "the file chooser did not accept $abs ($st)"; return 1
    fi
  fi
  _lc_trace "attach $(basename "$abs"): accepted by $how"
  _idrv_until 10 _idrv_send_has "$inst" "$re" "$abs" ||
    { _idrv_err send_file "$abs is not in the chat window's 'File to send.' list: $(_idrv_send_rows "$inst" "$re" | tr '\t\n' '| ')"; return 1; }
}
