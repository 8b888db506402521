"""The one exception class of the toolkit for bad arguments and bad data."""


class ParameterError(ValueError):
  """An argument or a data buffer is invalid.

  Raised for user-facing problems: an empty or corrupt audio file, a NaN in a
  buffer, a wrong rank, a sample rate that does not match, a TFRecord folder
  whose feature parameters differ from the requested ones. The message always
  names the offending value.
  """


class OutputError(ParameterError):
  """An output file could not be written (a full disk, no permission).

  Nothing is left half-written under the final name (``common.atomic``);
  the message names the file and the free space of its folder.
  """
