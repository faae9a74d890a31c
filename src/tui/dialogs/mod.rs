//! Overlays: the help screen, the confirmation queue and the steal dialog.

pub mod confirm;
pub mod help;
pub mod steal;

use ratatui::layout::Rect;

/// A `width`×`height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
