//! Audio hosts and devices: choosing, finding by name, listing, configuring.

use cpal::traits::{DeviceTrait, HostTrait};

use super::AudioError;

/// Which audio host (driver API) to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostChoice {
    /// cpal's default host (ALSA on Linux; PipeWire and PulseAudio serve it on desktops).
    #[default]
    Default,
    /// ALSA explicitly.
    Alsa,
    /// JACK (needs the `jack` cargo feature).
    Jack,
}

impl std::str::FromStr for HostChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "default" => Ok(Self::Default),
            "alsa" => Ok(Self::Alsa),
            "jack" => Ok(Self::Jack),
            other => Err(format!(
                "unknown audio host {other:?} (expected default, alsa or jack)"
            )),
        }
    }
}

/// Parses a sample format name as cpal prints it (`i16`, `f32`, `u8`, …).
pub fn parse_sample_format(name: &str) -> Result<cpal::SampleFormat, String> {
    use cpal::SampleFormat as F;
    let all = [
        F::I8,
        F::I16,
        F::I24,
        F::I32,
        F::I64,
        F::U8,
        F::U16,
        F::U24,
        F::U32,
        F::U64,
        F::F32,
        F::F64,
    ];
    all.into_iter()
        .find(|f| f.to_string().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(|f| f.to_string()).collect();
            format!(
                "unknown sample format {name:?} (expected one of {})",
                names.join(", ")
            )
        })
}

/// Opens the chosen host.
pub fn open_host(choice: HostChoice) -> Result<cpal::Host, AudioError> {
    let id = match choice {
        HostChoice::Default => return Ok(cpal::default_host()),
        HostChoice::Alsa => cpal::available_hosts()
            .into_iter()
            .find(|id| id.name().eq_ignore_ascii_case("alsa")),
        HostChoice::Jack => cpal::available_hosts()
            .into_iter()
            .find(|id| id.name().eq_ignore_ascii_case("jack")),
    };
    let name = format!("{choice:?}").to_ascii_lowercase();
    let Some(id) = id else {
        let detail = if choice == HostChoice::Jack && !cfg!(feature = "jack") {
            "this build of Reprise has no JACK support (build with --features jack)".to_owned()
        } else {
            "not available on this system".to_owned()
        };
        return Err(AudioError::HostUnavailable { host: name, detail });
    };
    cpal::host_from_id(id).map_err(|e| AudioError::HostUnavailable {
        host: name,
        detail: e.to_string(),
    })
}

/// Direction of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// The name a user gives to pick a device: the host's own identifier without the host
/// prefix (`default`, `hw:0,0`, `jackraw` on ALSA), or the description when there is none.
pub fn device_name(device: &cpal::Device) -> String {
    match device.id() {
        Ok(id) => {
            let id = id.to_string();
            match id.split_once(':') {
                Some((_, rest)) if !rest.is_empty() => rest.to_owned(),
                _ => id,
            }
        }
        Err(_) => device.to_string(),
    }
}

/// The host's description of a device, when it says more than its name.
pub fn device_description(device: &cpal::Device) -> Option<String> {
    let description = device.to_string();
    (description != device_name(device)).then_some(description)
}

/// Stream configurations to try for a supported configuration, best first: the
/// host's default buffer size, then fixed sizes of about 20 ms and 64 ms (some ALSA
/// plugin chains refuse the default at rates other than their native one).
pub fn stream_config_candidates(
    supported: &cpal::SupportedStreamConfig,
) -> Vec<cpal::StreamConfig> {
    let base = supported.config();
    let mut candidates = vec![base];
    let rate = supported.sample_rate();
    for seconds in [0.02f64, 0.064] {
        let frames = ((rate as f64 * seconds) as u32).next_power_of_two();
        let fits = match supported.buffer_size() {
            cpal::SupportedBufferSize::Range { min, max } => *min <= frames && frames <= *max,
            cpal::SupportedBufferSize::Unknown => true,
        };
        if fits {
            candidates.push(cpal::StreamConfig {
                buffer_size: cpal::BufferSize::Fixed(frames),
                ..base
            });
        }
    }
    candidates
}

/// Builds a stream with the first candidate configuration the device accepts.
pub fn build_with_fallback<S>(
    supported: &cpal::SupportedStreamConfig,
    mut build: impl FnMut(&cpal::StreamConfig) -> Result<S, cpal::Error>,
) -> Result<S, cpal::Error> {
    let mut last = None;
    for config in stream_config_candidates(supported) {
        match build(&config) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == cpal::ErrorKind::UnsupportedConfig => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| cpal::ErrorKind::UnsupportedConfig.into()))
}

fn devices(host: &cpal::Host, direction: Direction) -> Vec<cpal::Device> {
    let listed = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
        Direction::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
    };
    listed.unwrap_or_default()
}

/// Finds a device by name, or the host's default one when `name` is `None`.
///
/// A name matches a device whose name equals it (ignoring case); failing that,
/// the one device whose name contains it. An unknown or ambiguous name gives an
/// error that lists the available devices.
pub fn find_device(
    host: &cpal::Host,
    direction: Direction,
    name: Option<&str>,
) -> Result<cpal::Device, AudioError> {
    let Some(name) = name else {
        let device = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return device.ok_or(AudioError::NoDevice {
            direction: direction.word(),
        });
    };
    let all = devices(host, direction);
    let names: Vec<String> = all.iter().map(device_name).collect();
    let index = crate::names::pick_by_name(&names, name);
    match index {
        Some(i) => Ok(all.into_iter().nth(i).expect("index from the same list")),
        None => Err(AudioError::UnknownDevice {
            name: name.to_owned(),
            direction: direction.word(),
            available: names,
        }),
    }
}

/// What a caller asks of a device's configuration; `None` fields take the device default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    pub rate: Option<u32>,
    pub channels: Option<u16>,
    pub format: Option<cpal::SampleFormat>,
}

/// Picks a stream configuration: the device's default, changed where `request` asks.
///
/// Returns an [`AudioError::UnsupportedConfig`] listing what the device supports
/// when no configuration offers what was asked.
pub fn choose_config(
    device: &cpal::Device,
    direction: Direction,
    request: ConfigRequest,
) -> Result<cpal::SupportedStreamConfig, AudioError> {
    let name = device_name(device);
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| AudioError::Stream {
        device: name.clone(),
        detail: format!("cannot read its default configuration: {e}"),
    })?;
    let rate = request.rate.unwrap_or(default.sample_rate());
    let channels = request.channels.unwrap_or(default.channels());
    let format = request.format.unwrap_or(default.sample_format());
    if (rate, channels, format)
        == (
            default.sample_rate(),
            default.channels(),
            default.sample_format(),
        )
    {
        return Ok(default);
    }
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
        Direction::Input => device.supported_input_configs().map(|c| c.collect()),
        Direction::Output => device.supported_output_configs().map(|c| c.collect()),
    }
    .unwrap_or_default();
    let found = ranges.iter().find(|r| {
        r.min_sample_rate() <= rate
            && rate <= r.max_sample_rate()
            && r.channels() == channels
            && r.sample_format() == format
    });
    match found {
        Some(range) => Ok(range.with_sample_rate(rate)),
        None => Err(AudioError::UnsupportedConfig {
            device: name,
            requested: format!("{channels} ch {format} {rate} Hz"),
            supported: describe_ranges(&ranges),
        }),
    }
}

fn describe_ranges(ranges: &[cpal::SupportedStreamConfigRange]) -> String {
    if ranges.is_empty() {
        return "nothing it would report".to_owned();
    }
    // Plugin devices report hundreds of ranges; summarise per sample format.
    let mut formats: Vec<cpal::SampleFormat> = Vec::new();
    for r in ranges {
        if !formats.contains(&r.sample_format()) {
            formats.push(r.sample_format());
        }
    }
    formats
        .iter()
        .map(|&f| {
            let of_format = ranges.iter().filter(|r| r.sample_format() == f);
            let (mut ch_lo, mut ch_hi, mut hz_lo, mut hz_hi) = (u16::MAX, 0, u32::MAX, 0);
            for r in of_format {
                ch_lo = ch_lo.min(r.channels());
                ch_hi = ch_hi.max(r.channels());
                hz_lo = hz_lo.min(r.min_sample_rate());
                hz_hi = hz_hi.max(r.max_sample_rate());
            }
            let span = |lo: u64, hi: u64| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                }
            };
            format!(
                "{f} {} ch {} Hz",
                span(ch_lo as u64, ch_hi as u64),
                span(hz_lo as u64, hz_hi as u64)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line describing a configuration, e.g. `2 ch f32 48000 Hz`.
pub fn describe_config(config: &cpal::SupportedStreamConfig) -> String {
    format!(
        "{} ch {} {} Hz",
        config.channels(),
        config.sample_format(),
        config.sample_rate()
    )
}

/// A device and its default configuration (or why it has none).
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub description: Option<String>,
    pub default_config: Result<String, String>,
    pub is_default: bool,
}

/// Every input and output device of a host.
#[derive(Clone, Debug)]
pub struct DeviceList {
    pub host: String,
    pub inputs: Vec<DeviceInfo>,
    pub outputs: Vec<DeviceInfo>,
}

/// Lists the devices of a host with their default configurations.
pub fn list_devices(choice: HostChoice) -> Result<DeviceList, AudioError> {
    let host = open_host(choice)?;
    let describe = |direction: Direction| {
        let default_name = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .map(|d| device_name(&d));
        devices(&host, direction)
            .iter()
            .map(|d| {
                let name = device_name(d);
                let config = match direction {
                    Direction::Input => d.default_input_config(),
                    Direction::Output => d.default_output_config(),
                };
                DeviceInfo {
                    is_default: default_name.as_deref() == Some(name.as_str()),
                    name,
                    description: device_description(d),
                    default_config: config
                        .map(|c| describe_config(&c))
                        .map_err(|e| e.to_string()),
                }
            })
            .collect()
    };
    Ok(DeviceList {
        host: host.id().name().to_owned(),
        inputs: describe(Direction::Input),
        outputs: describe(Direction::Output),
    })
}
