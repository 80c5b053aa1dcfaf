/** The tool's version, recorded in every model file and output. */
export const VERSION = "0.1.0";
