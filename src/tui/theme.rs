//! Themes: `dark` (the default: 256-colour palette for dark backgrounds),
//! `light` (dark shades readable on white), `ansi` (only the 16 ANSI
//! colours, so the terminal's own palette decides) and `mono` (no colour:
//! bold, reverse and dim only). `--theme` or `theme = …` in ecops.toml pick
//! one; otherwise `NO_COLOR` (non-empty, <https://no-color.org>) means mono.
//! The 16 ANSI colours reach the terminal as classic SGR codes (30–37,
//! 90–97), never as 256-colour escapes ([`super::term::TermWriter`]).

use ratatui::style::{Color, Modifier, Style};

/// The themes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
    Ansi,
    Mono,
}

impl ThemeName {
    pub const ALL: [ThemeName; 4] = [
        ThemeName::Dark,
        ThemeName::Light,
        ThemeName::Ansi,
        ThemeName::Mono,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ThemeName::Dark => "dark",
            ThemeName::Light => "light",
            ThemeName::Ansi => "ansi",
            ThemeName::Mono => "mono",
        }
    }

    /// Parses a theme name (`--theme`).
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| format!("unknown theme '{s}' (dark, light, ansi, mono)"))
    }

    /// The theme to use: the one asked for, else mono under `NO_COLOR`, else dark.
    pub fn resolve(asked: Option<ThemeName>) -> ThemeName {
        asked.unwrap_or_else(|| {
            if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
                ThemeName::Mono
            } else {
                ThemeName::Dark
            }
        })
    }
}

/// The colours of a coloured theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Palette {
    dim: Color,
    title: Color,
    selected_bg: Color,
    selected_fg: Color,
    key: Color,
    ok: Color,
    warn: Color,
    bad: Color,
    series: [Color; 4],
    /// Map heat, hottest first.
    heat: [Color; 4],
    land: Color,
}

const fn ix(n: u8) -> Color {
    Color::Indexed(n)
}

const DARK: Palette = Palette {
    dim: ix(245),
    title: ix(81),
    selected_bg: ix(25),
    selected_fg: ix(231),
    key: ix(221),
    ok: ix(114),
    warn: ix(214),
    bad: ix(203),
    series: [ix(114), ix(81), ix(75), ix(203)],
    heat: [ix(203), ix(221), ix(114), ix(81)],
    land: ix(250),
};

/// Dark shades only: every foreground has a contrast of at least 4.5:1 on white.
const LIGHT: Palette = Palette {
    dim: ix(241),
    title: ix(25),
    selected_bg: ix(25),
    selected_fg: ix(231),
    key: ix(94),
    ok: ix(22),
    warn: ix(94),
    bad: ix(124),
    series: [ix(22), ix(24), ix(19), ix(124)],
    heat: [ix(124), ix(94), ix(22), ix(24)],
    land: ix(243),
};

const ANSI: Palette = Palette {
    dim: Color::DarkGray,
    title: Color::Cyan,
    selected_bg: Color::Blue,
    selected_fg: Color::White,
    key: Color::Yellow,
    ok: Color::Green,
    warn: Color::Yellow,
    bad: Color::Red,
    series: [Color::Green, Color::Cyan, Color::Blue, Color::Red],
    heat: [Color::Red, Color::Yellow, Color::Green, Color::Cyan],
    land: Color::Gray,
};

/// The console's styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub name: ThemeName,
    palette: Option<Palette>,
}

impl Default for Theme {
    fn default() -> Self {
        Self::new(ThemeName::Dark)
    }
}

impl Theme {
    pub fn new(name: ThemeName) -> Self {
        let palette = match name {
            ThemeName::Dark => Some(DARK),
            ThemeName::Light => Some(LIGHT),
            ThemeName::Ansi => Some(ANSI),
            ThemeName::Mono => None,
        };
        Self { name, palette }
    }

    /// The theme `NO_COLOR` asks for (mono), else dark.
    pub fn from_env() -> Self {
        Self::new(ThemeName::resolve(None))
    }

    /// A theme without colour.
    pub fn mono() -> Self {
        Self::new(ThemeName::Mono)
    }

    fn fg(&self, pick: fn(&Palette) -> Color) -> Style {
        match &self.palette {
            Some(p) => Style::new().fg(pick(p)),
            None => Style::new(),
        }
    }

    pub fn text(&self) -> Style {
        Style::new()
    }

    pub fn dim(&self) -> Style {
        match &self.palette {
            Some(p) => Style::new().fg(p.dim),
            None => Style::new().add_modifier(Modifier::DIM),
        }
    }

    pub fn title(&self) -> Style {
        self.fg(|p| p.title).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self) -> Style {
        self.dim()
    }

    pub fn border_focus(&self) -> Style {
        self.fg(|p| p.title)
    }

    /// Selected row, active tab.
    pub fn selected(&self) -> Style {
        match &self.palette {
            Some(p) => Style::new()
                .bg(p.selected_bg)
                .fg(p.selected_fg)
                .add_modifier(Modifier::BOLD),
            None => Style::new().add_modifier(Modifier::REVERSED),
        }
    }

    pub fn key(&self) -> Style {
        self.fg(|p| p.key).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(|p| p.ok)
    }

    pub fn warn(&self) -> Style {
        self.fg(|p| p.warn).add_modifier(Modifier::BOLD)
    }

    pub fn bad(&self) -> Style {
        self.fg(|p| p.bad).add_modifier(Modifier::BOLD)
    }

    pub fn header(&self) -> Style {
        self.fg(|p| p.title).add_modifier(Modifier::BOLD)
    }

    /// Sparkline / bar colour of a series.
    pub fn series(&self, i: usize) -> Style {
        match &self.palette {
            Some(p) => Style::new().fg(p.series[i % p.series.len()]),
            None => Style::new(),
        }
    }

    /// Colour of a map cell by its share of the largest cell's rows (0..=1).
    pub fn heat(&self, share: f64) -> Color {
        let Some(p) = &self.palette else {
            return Color::Reset;
        };
        match share {
            s if s >= 0.66 => p.heat[0],
            s if s >= 0.33 => p.heat[1],
            s if s >= 0.1 => p.heat[2],
            _ => p.heat[3],
        }
    }

    /// Colour of the map's mark on the selected cell.
    pub fn marker(&self) -> Color {
        self.palette.map_or(Color::Reset, |p| p.key)
    }

    /// Colour of the coastlines.
    pub fn land(&self) -> Color {
        self.palette.map_or(Color::Reset, |p| p.land)
    }
}
