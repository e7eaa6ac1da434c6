using Navette.Cli;

return await NavetteCommand.RunAsync(args);
